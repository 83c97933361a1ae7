// The gateway → agent command channel on the Node gateway (suite: test/helpers/agent-commands-suite.ts).
import { startNodeTestGateway } from '../helpers/gateway.js';
import { agentCommandSuite } from '../helpers/agent-commands-suite.js';

agentCommandSuite('control commands on the Node gateway', startNodeTestGateway);
