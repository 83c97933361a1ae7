// The gateway behaviour suite against the Workers entry in workerd (`wrangler dev --local`).
import { startWorkerTestGateway } from '../helpers/gateway.js';
import { gatewayBehaviourSuite } from '../helpers/gateway-suite.js';

gatewayBehaviourSuite('gateway on Workers (workerd)', startWorkerTestGateway);
