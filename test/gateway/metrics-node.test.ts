// Gateway /metrics on the Node entry.
import { startNodeTestGateway } from '../helpers/gateway.js';
import { gatewayMetricsSuite } from './metrics-suite.js';

gatewayMetricsSuite('gateway metrics on Node', startNodeTestGateway);
