// SPC-4 §5.13 reservations: the central conflict hook the pipeline calls once per command.
// Persistent reservations and SPC-2 RESERVE/RELEASE (pr*.ts) plug in by installing a policy.
import type { Nexus } from './port.js';
import type { OpcodeEntry } from './opcodes.js';

export interface ReservationPolicy {
  /** true when the command must end with RESERVATION CONFLICT for this nexus. */
  conflicts(nexus: Nexus, entry: OpcodeEntry, cdb: Buffer): boolean;
  /** I_T nexus loss (SPC-2 reservations are released; PR registrations stay). */
  nexusLost?(nexusId: string): void;
  /** LOGICAL UNIT RESET / target reset (SPC-2 reservations are released). */
  reset?(): void;
}

/** No reservation support installed: everything is allowed. */
export const allowAll: ReservationPolicy = { conflicts: () => false };

export class Reservations {
  /** Replaced by the PR implementation; state it needs lives with the policy. */
  policy: ReservationPolicy = allowAll;

  conflicts(nexus: Nexus, entry: OpcodeEntry, cdb: Buffer): boolean {
    return this.policy.conflicts(nexus, entry, cdb);
  }
  nexusLost(nexusId: string): void {
    this.policy.nexusLost?.(nexusId);
  }
  reset(): void {
    this.policy.reset?.();
  }
}
