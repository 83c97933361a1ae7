// RFC 7143 §11.13.5 login status → the reason label used by metrics, status and the dashboard.
import { LoginStatus } from '../iscsi/pdu/constants.js';

const NAMES = new Map<number, string>(Object.entries(LoginStatus).map(([k, v]) => [v as number, k.toLowerCase()]));

/** "authentication_failure" (CHAP), "authorization_failure" (no ACL), …; unknown codes as hex. */
export function loginReason(status: number): string {
  return NAMES.get(status) ?? `0x${status.toString(16).padStart(4, '0')}`;
}
