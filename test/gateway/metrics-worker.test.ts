// Gateway /metrics on the Workers entry in workerd: the same hand-written exposition as on Node.
import { startWorkerTestGateway } from '../helpers/gateway.js';
import { gatewayMetricsSuite } from './metrics-suite.js';

gatewayMetricsSuite('gateway metrics on Workers (workerd)', startWorkerTestGateway);
