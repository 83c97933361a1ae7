// SPC-4 §5.13.1 table 63 (persistent reservations) and SPC-2 §5.5.1 (RESERVE/RELEASE): the central conflict rules.
import type { LogicalUnit } from '../logical-unit.js';
import { ReservationClass, type OpcodeEntry } from '../opcodes.js';
import type { Nexus } from '../port.js';
import type { ReservationPolicy } from '../reservations.js';
import { PrStore } from './persist.js';
import { isExclusiveAccess, PrState, registrantsHaveAccess } from './state.js';

export const RESERVE6 = 0x16;
export const RELEASE6 = 0x17;
export const RESERVE10 = 0x56;
export const RELEASE10 = 0x57;

/** Commands another initiator may still run while an SPC-2 reservation is held (SPC-2 table 10). */
const SPC2_ALLOWED = new Set([0x12 /* INQUIRY */, 0x03 /* REQUEST SENSE */, 0xa0 /* REPORT LUNS */, RELEASE6, RELEASE10, 0xa3 /* MAINTENANCE IN */]);

export class PrPolicy implements ReservationPolicy {
  /** Nexus holding an SPC-2 RESERVE(6)/(10) reservation. */
  spc2Holder: string | undefined;

  constructor(
    readonly state: PrState,
    readonly store: PrStore,
  ) {}

  conflicts(nexus: Nexus, entry: OpcodeEntry, cdb: Buffer): boolean {
    const id = nexus.id;
    const op = cdb[0];
    if (this.spc2Holder !== undefined && this.spc2Holder !== id && !SPC2_ALLOWED.has(op)) return true;
    const st = this.state;
    if (entry.reservation === ReservationClass.RESERVATION) {
      // SPC-4 §5.13.3 (CRH=1): RESERVE/RELEASE are refused while persistent reservations are in use.
      if (op === RESERVE6 || op === RESERVE10 || op === RELEASE6 || op === RELEASE10) return st.registrants.size > 0 || st.reservation !== undefined;
      return false;
    }
    const r = st.reservation;
    if (!r || entry.reservation === ReservationClass.ALLOWED) return false;
    if (st.isHolder(id)) return false;
    if (registrantsHaveAccess(r.type) && st.registrants.has(id)) return false;
    if (entry.reservation === ReservationClass.READ) return isExclusiveAccess(r.type);
    return true; // WRITE and EXCLUSIVE classes conflict under every type for a nexus without access
  }

  nexusLost(nexusId: string): void {
    if (this.spc2Holder === nexusId) this.spc2Holder = undefined;
  }

  reset(): void {
    this.spc2Holder = undefined;
  }
}

/** The policy installed on an LU (undefined before installPersistentReservations ran). */
export function prPolicyOf(lu: LogicalUnit): PrPolicy | undefined {
  const p = lu.reservations.policy;
  return p instanceof PrPolicy ? p : undefined;
}

/** Loads APTPL state from the LU's state dir and installs the policy (called once, at LU creation). */
export async function installPersistentReservations(lu: LogicalUnit): Promise<PrPolicy> {
  const store = new PrStore(lu.stateDir);
  const state = (await store.load()) ?? new PrState();
  const policy = new PrPolicy(state, store);
  lu.reservations.policy = policy;
  return policy;
}
