// Control plane end to end (issue 7) against the Workers gateway in workerd: real agent process, libiscsi logins.
import { controlPlaneE2e } from '../../helpers/gateway-e2e.js';
import { startWorkerTestGateway } from '../../helpers/gateway.js';

controlPlaneE2e('control plane e2e, Workers gateway (workerd)', startWorkerTestGateway);
