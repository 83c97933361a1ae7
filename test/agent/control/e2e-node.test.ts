// Control plane end to end (issue 7) against the Node gateway: real agent process, libiscsi logins.
import { controlPlaneE2e } from '../../helpers/gateway-e2e.js';
import { startNodeTestGateway } from '../../helpers/gateway.js';

controlPlaneE2e('control plane e2e, Node gateway', startNodeTestGateway);
