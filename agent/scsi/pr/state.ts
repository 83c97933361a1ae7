// SPC-4 §5.13 persistent reservations: registrations and the reservation of one logical unit, keyed by I_T nexus.
import type { Nexus } from '../port.js';

/** SPC-4 §6.16.3 table 172: persistent reservation types. */
export const PrType = {
  WRITE_EXCLUSIVE: 1,
  EXCLUSIVE_ACCESS: 3,
  WRITE_EXCLUSIVE_REGISTRANTS_ONLY: 5,
  EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: 6,
  WRITE_EXCLUSIVE_ALL_REGISTRANTS: 7,
  EXCLUSIVE_ACCESS_ALL_REGISTRANTS: 8,
} as const;
export type PrType = (typeof PrType)[keyof typeof PrType];

export function isPrType(t: number): t is PrType {
  return t === 1 || t === 3 || (t >= 5 && t <= 8);
}
/** All-registrants types: every registrant is a reservation holder (§5.13.9). */
export function isAllRegistrants(t: PrType): boolean {
  return t === PrType.WRITE_EXCLUSIVE_ALL_REGISTRANTS || t === PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
}
/** Registrants-only and all-registrants types: registered nexuses keep access. */
export function registrantsHaveAccess(t: PrType): boolean {
  return t >= 5;
}
/** Exclusive-access types also refuse reads to nexuses without access. */
export function isExclusiveAccess(t: PrType): boolean {
  return t === PrType.EXCLUSIVE_ACCESS || t === PrType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY || t === PrType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
}

/** What READ FULL STATUS and APTPL need to know about a registered I_T nexus. */
export interface Registrant {
  readonly nexusId: string;
  readonly initiatorPortName: string;
  readonly relativeTargetPortId: number;
  key: bigint;
}

export interface Reservation {
  /** Nexus that holds it; for all-registrants types the holder is every registrant and this is the reserver. */
  holder: string;
  type: PrType;
}

export function registrantOf(nexus: Nexus, key: bigint): Registrant {
  return { nexusId: nexus.id, initiatorPortName: nexus.initiatorPortName, relativeTargetPortId: nexus.relativeTargetPortId, key };
}

/** The persistent reservation state of one LU (SPC-4 §5.13.2). */
export class PrState {
  generation = 0;
  aptpl = false;
  readonly registrants = new Map<string, Registrant>();
  reservation: Reservation | undefined;

  keyOf(nexusId: string): bigint | undefined {
    return this.registrants.get(nexusId)?.key;
  }

  isHolder(nexusId: string): boolean {
    const r = this.reservation;
    if (!r) return false;
    if (isAllRegistrants(r.type)) return this.registrants.has(nexusId);
    return r.holder === nexusId;
  }

  /** The reservation key READ RESERVATION reports (zero for all-registrants types, §6.15.3). */
  reservationKey(): bigint {
    const r = this.reservation;
    if (!r || isAllRegistrants(r.type)) return 0n;
    return this.registrants.get(r.holder)?.key ?? 0n;
  }

  /** Removes one registration; releases the reservation when its (last) holder goes. Returns true if released. */
  unregister(nexusId: string): boolean {
    if (!this.registrants.delete(nexusId)) return false;
    const r = this.reservation;
    if (!r) return false;
    if (isAllRegistrants(r.type) ? this.registrants.size === 0 : r.holder === nexusId) {
      this.reservation = undefined;
      return true;
    }
    if (isAllRegistrants(r.type) && r.holder === nexusId) {
      // Keep a live registrant as the nominal reserver.
      r.holder = this.registrants.keys().next().value as string;
    }
    return false;
  }

  clear(): void {
    this.registrants.clear();
    this.reservation = undefined;
  }
}
