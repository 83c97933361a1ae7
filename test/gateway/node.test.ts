// The gateway behaviour suite against the Node entry (gateway/node/main.ts).
import { startNodeTestGateway } from '../helpers/gateway.js';
import { gatewayBehaviourSuite } from '../helpers/gateway-suite.js';

gatewayBehaviourSuite('gateway on Node', startNodeTestGateway);
