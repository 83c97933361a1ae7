// The gateway → agent command channel on the Workers gateway in workerd (suite: test/helpers/agent-commands-suite.ts).
import { startWorkerTestGateway } from '../helpers/gateway.js';
import { agentCommandSuite } from '../helpers/agent-commands-suite.js';

agentCommandSuite('control commands on the Workers gateway (workerd)', startWorkerTestGateway);
