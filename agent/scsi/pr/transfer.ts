// SPC-4 §5.13 persistent reservations moved with a logical unit to another target (live migration): the
// registrations and the reservation as plain data, and their import on the destination LU.
import type { LogicalUnit } from '../logical-unit.js';
import { prPolicyOf } from './policy.js';
import { isPrType, type PrType, type Registrant } from './state.js';

export interface PrTransfer {
  readonly generation: number;
  readonly aptpl: boolean;
  readonly registrants: readonly { nexusId: string; initiatorPortName: string; relativeTargetPortId: number; key: string }[];
  readonly reservation: { holder: string; type: number } | null;
}

/** Where the LU was reached through and is reached through now: registrations of the old port move to the new. */
export interface PortRemap {
  readonly target: string;
  readonly fromTpg: number;
  readonly toTpg: number;
  readonly toRelativePortId: number;
}

const targetPortName = (target: string, tpg: number): string => `${target},t,0x${tpg.toString(16).padStart(4, '0')}`;

export function exportPr(lu: LogicalUnit): PrTransfer {
  const p = prPolicyOf(lu);
  if (!p) return { generation: 0, aptpl: false, registrants: [], reservation: null };
  const st = p.state;
  return {
    generation: st.generation,
    aptpl: st.aptpl,
    registrants: [...st.registrants.values()].map((r) => ({ nexusId: r.nexusId, initiatorPortName: r.initiatorPortName, relativeTargetPortId: r.relativeTargetPortId, key: r.key.toString() })),
    reservation: st.reservation ? { holder: st.reservation.holder, type: st.reservation.type } : null,
  };
}

function checkTransfer(v: unknown): PrTransfer {
  const t = v as PrTransfer;
  const ok = typeof t === 'object' && t !== null && Number.isSafeInteger(t.generation) && typeof t.aptpl === 'boolean' && Array.isArray(t.registrants)
    && t.registrants.length <= 65536
    && t.registrants.every((r) => typeof r?.nexusId === 'string' && typeof r.initiatorPortName === 'string' && Number.isSafeInteger(r.relativeTargetPortId) && /^\d{1,20}$/.test(String(r.key)))
    && (t.reservation === null || (typeof t.reservation?.holder === 'string' && isPrType(t.reservation.type)));
  if (!ok) throw new Error('persistent reservation state to import is malformed');
  return t;
}

/**
 * Replaces the LU's registrations and reservation with `data` (checked first: nothing changes when it is
 * malformed). With `remap`, those made through the old target port are re-keyed to this LU's port, since
 * the same initiator port reaches the LU through it now; the PR generation moves on by one.
 */
export async function importPr(lu: LogicalUnit, data: unknown, remap?: PortRemap): Promise<{ registrants: number; reserved: boolean }> {
  const t = checkTransfer(data);
  const p = prPolicyOf(lu);
  if (!p) throw new Error(`${lu.name} has no persistent reservation support to import into`);
  const from = remap ? `|${targetPortName(remap.target, remap.fromTpg)}`.toLowerCase() : undefined;
  const rekey = (id: string): string => {
    if (!remap || !from || !id.toLowerCase().endsWith(from)) return id;
    const port = id.slice(id.length - from.length + 1); // as the initiator spelled the target name at login
    return `${id.slice(0, id.length - from.length)}|${targetPortName(port.slice(0, port.lastIndexOf(',t,')), remap.toTpg)}`;
  };
  const regs = new Map<string, Registrant>();
  for (const r of t.registrants) {
    const id = rekey(r.nexusId);
    regs.set(id, { nexusId: id, initiatorPortName: r.initiatorPortName, relativeTargetPortId: id !== r.nexusId ? remap!.toRelativePortId : r.relativeTargetPortId, key: BigInt(r.key) });
  }
  const st = p.state;
  st.registrants.clear();
  for (const [id, r] of regs) st.registrants.set(id, r);
  const holder = t.reservation ? rekey(t.reservation.holder) : undefined;
  st.reservation = t.reservation && holder ? { holder, type: t.reservation.type as PrType } : undefined;
  st.aptpl = t.aptpl;
  st.generation = (t.generation + 1) >>> 0;
  await p.store.save(st);
  return { registrants: st.registrants.size, reserved: st.reservation !== undefined };
}
