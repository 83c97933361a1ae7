// SPC-4 §6.16 PERSISTENT RESERVE OUT and §5.13.6–5.13.11: register, reserve, release, clear, preempt (and abort), register and move.
import { dataOutBuffer } from '../cdb.js';
import type { LogicalUnit } from '../logical-unit.js';
import type { CommandContext, CommandResult } from '../opcodes.js';
import { ScsiStatus } from '../port.js';
import { SenseError, cdbField, paramField } from '../sense.js';
import { prPolicyOf, type PrPolicy } from './policy.js';
import { isAllRegistrants, isPrType, registrantOf, type PrState, type PrType } from './state.js';
import { parseTransportId } from './transport-id.js';

export const ProutAction = {
  REGISTER: 0,
  RESERVE: 1,
  RELEASE: 2,
  CLEAR: 3,
  PREEMPT: 4,
  PREEMPT_AND_ABORT: 5,
  REGISTER_AND_IGNORE_EXISTING_KEY: 6,
  REGISTER_AND_MOVE: 7,
} as const;

const BASIC_LENGTH = 24;
const CONFLICT: CommandResult = Object.freeze({ status: ScsiStatus.RESERVATION_CONFLICT });
/** Registrations kept per LU; a bound so one initiator cannot grow the state (and the APTPL file) without limit. */
export const MAX_REGISTRANTS = 256;

interface Params {
  key: bigint;
  saKey: bigint;
  specIPt: boolean;
  allTgPt: boolean;
  aptpl: boolean;
}

function basicParams(buf: Buffer): Params {
  return {
    key: buf.readBigUInt64BE(0),
    saKey: buf.readBigUInt64BE(8),
    specIPt: (buf[20] & 0x08) !== 0,
    allTgPt: (buf[20] & 0x04) !== 0,
    aptpl: (buf[20] & 0x01) !== 0,
  };
}

/** SAM-5 §5.6 PREEMPT AND ABORT: the preempted nexuses' tasks end like a CLEAR TASK SET from this nexus. */
function abortTasksOf(lu: LogicalUnit, victims: Set<string>, ctx: CommandContext): void {
  for (const t of lu.tasks.select((t) => victims.has(t.nexusId) && !(t.nexusId === ctx.nexus.id && t.tag === ctx.cmd.tag))) {
    t.aborted = true;
    if (t.nexusId === ctx.nexus.id) {
      t.abortWith?.({ status: ScsiStatus.TASK_ABORTED, aborted: true });
    } else if (lu.limits.tas) {
      t.abortWith?.({ status: ScsiStatus.TASK_ABORTED });
    } else {
      t.abortWith?.({ status: ScsiStatus.TASK_ABORTED, aborted: true });
      lu.ua.establish(t.nexusId, 'COMMANDS_CLEARED_BY_ANOTHER_INITIATOR');
    }
  }
}

function register(ctx: CommandContext, st: PrState, p: Params, ignoreExisting: boolean): CommandResult | 'changed' {
  const id = ctx.nexus.id;
  const current = st.keyOf(id);
  if (current === undefined) {
    if (!ignoreExisting && p.key !== 0n) return CONFLICT;
    if (p.saKey === 0n) return {}; // nothing to register
    if (st.registrants.size >= MAX_REGISTRANTS) throw new SenseError('INSUFFICIENT_REGISTRATION_RESOURCES');
    st.registrants.set(id, registrantOf(ctx.nexus, p.saKey));
  } else {
    if (!ignoreExisting && p.key !== current) return CONFLICT;
    if (p.saKey === 0n) {
      const r = st.reservation;
      const released = st.unregister(id);
      // §5.13.11.2.3: a registrants-only reservation released by its holder unregistering tells the others.
      if (released && r && !isAllRegistrants(r.type) && r.type >= 5) for (const other of st.registrants.keys()) ctx.lu.ua.establish(other, 'RESERVATIONS_RELEASED');
    } else {
      st.registrants.get(id)!.key = p.saKey;
    }
  }
  st.aptpl = p.aptpl;
  st.generation = (st.generation + 1) >>> 0;
  return 'changed';
}

function reserve(ctx: CommandContext, st: PrState, key: bigint, type: PrType): CommandResult | 'changed' {
  const id = ctx.nexus.id;
  if (st.keyOf(id) !== key) return CONFLICT;
  const r = st.reservation;
  if (r) return st.isHolder(id) && r.type === type ? {} : CONFLICT;
  st.reservation = { holder: id, type };
  return 'changed';
}

function release(ctx: CommandContext, st: PrState, key: bigint, type: PrType): CommandResult | 'changed' {
  const id = ctx.nexus.id;
  const own = st.keyOf(id);
  if (own === undefined) return CONFLICT;
  const r = st.reservation;
  if (!r || !st.isHolder(id)) return {};
  if (own !== key) return CONFLICT;
  if (r.type !== type) throw new SenseError('INVALID_RELEASE_OF_PERSISTENT_RESERVATION');
  st.reservation = undefined;
  if (r.type !== 1 && r.type !== 3) for (const other of st.registrants.keys()) if (other !== id) ctx.lu.ua.establish(other, 'RESERVATIONS_RELEASED');
  return 'changed';
}

function clear(ctx: CommandContext, st: PrState, key: bigint): CommandResult | 'changed' {
  const id = ctx.nexus.id;
  if (st.keyOf(id) !== key) return CONFLICT;
  for (const other of st.registrants.keys()) if (other !== id) ctx.lu.ua.establish(other, 'RESERVATIONS_PREEMPTED');
  st.clear();
  st.generation = (st.generation + 1) >>> 0;
  return 'changed';
}

/** §5.13.11.4 PREEMPT / PREEMPT AND ABORT. */
function preempt(ctx: CommandContext, st: PrState, p: Params, type: PrType, abort: boolean): CommandResult | 'changed' {
  const id = ctx.nexus.id;
  if (st.keyOf(id) !== p.key) return CONFLICT;
  const r = st.reservation;
  const victims = new Set<string>();
  const removeKey = (k: bigint) => {
    for (const reg of st.registrants.values()) if (reg.key === k && reg.nexusId !== id) victims.add(reg.nexusId);
  };
  if (r && isAllRegistrants(r.type)) {
    if (p.saKey === 0n) {
      for (const other of st.registrants.keys()) if (other !== id) victims.add(other);
      st.reservation = { holder: id, type };
    } else {
      removeKey(p.saKey);
    }
  } else if (r && p.saKey === st.reservationKey()) {
    removeKey(p.saKey);
    const changed = r.type !== type;
    st.reservation = { holder: id, type };
    if (changed) for (const other of st.registrants.keys()) if (other !== id && !victims.has(other)) ctx.lu.ua.establish(other, 'RESERVATIONS_RELEASED');
  } else {
    if (p.saKey === 0n) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(8));
    removeKey(p.saKey);
    if (victims.size === 0) return CONFLICT;
  }
  for (const v of victims) {
    st.registrants.delete(v);
    ctx.lu.ua.establish(v, 'REGISTRATIONS_PREEMPTED');
  }
  if (abort) abortTasksOf(ctx.lu, victims, ctx);
  st.generation = (st.generation + 1) >>> 0;
  return 'changed';
}

/** §5.13.8 REGISTER AND MOVE: the reservation and a registration go to the I_T nexus named by a TransportID. */
function registerAndMove(ctx: CommandContext, st: PrState, buf: Buffer, type: PrType): CommandResult | 'changed' {
  const id = ctx.nexus.id;
  const key = buf.readBigUInt64BE(0);
  const saKey = buf.readBigUInt64BE(8);
  const unreg = (buf[17] & 0x02) !== 0;
  const aptpl = (buf[17] & 0x01) !== 0;
  const relPort = buf.readUInt16BE(18);
  const tidLen = buf.readUInt32BE(20);
  const own = st.keyOf(id);
  if (own === undefined || own !== key) return CONFLICT;
  const r = st.reservation;
  if (!r || isAllRegistrants(r.type) || r.holder !== id) return CONFLICT;
  if (saKey === 0n) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(8));
  if (24 + tidLen > buf.length) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  const portName = parseTransportId(buf.subarray(24, 24 + tidLen));
  if (!portName) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(24));
  // The destination target port: this nexus's own port, or a port a registrant came through.
  let targetPortName: string | undefined;
  if (relPort === ctx.nexus.relativeTargetPortId) targetPortName = ctx.nexus.targetPortName;
  else for (const reg of st.registrants.values()) if (reg.relativeTargetPortId === relPort) targetPortName = reg.nexusId.slice(reg.nexusId.indexOf('|') + 1);
  if (!targetPortName) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(18));
  const destId = `${portName}|${targetPortName}`;
  if (destId === id) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(24));
  const dest = st.registrants.get(destId);
  if (dest) dest.key = saKey;
  else {
    if (st.registrants.size >= MAX_REGISTRANTS) throw new SenseError('INSUFFICIENT_REGISTRATION_RESOURCES');
    st.registrants.set(destId, { nexusId: destId, initiatorPortName: portName, relativeTargetPortId: relPort, key: saKey });
  }
  st.reservation = { holder: destId, type };
  if (unreg) st.registrants.delete(id);
  st.aptpl = aptpl;
  st.generation = (st.generation + 1) >>> 0;
  return 'changed';
}

function run(ctx: CommandContext, policy: PrPolicy, sa: number, type: number, paramLen: number): CommandResult | 'changed' {
  const st = policy.state;
  const needsType = sa === ProutAction.RESERVE || sa === ProutAction.RELEASE || sa === ProutAction.PREEMPT || sa === ProutAction.PREEMPT_AND_ABORT || sa === ProutAction.REGISTER_AND_MOVE;
  if (needsType) {
    if ((ctx.cdb[2] >> 4) !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(2, 7)); // LU_SCOPE only
    if (!isPrType(type)) throw new SenseError('INVALID_CDB_FIELD', cdbField(2, 3));
  }
  if (sa === ProutAction.REGISTER_AND_MOVE) {
    if (paramLen < BASIC_LENGTH) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
    return registerAndMove(ctx, st, dataOutBuffer(ctx.cmd, paramLen), type as PrType);
  }
  if (paramLen !== BASIC_LENGTH) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  const p = basicParams(dataOutBuffer(ctx.cmd, BASIC_LENGTH));
  // SIP_C=0 and ATP_C=0 in REPORT CAPABILITIES: neither bit is accepted.
  if (p.specIPt) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(20, 3));
  if (p.allTgPt) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(20, 2));
  switch (sa) {
    case ProutAction.REGISTER:
      return register(ctx, st, p, false);
    case ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY:
      return register(ctx, st, p, true);
    case ProutAction.RESERVE:
      return reserve(ctx, st, p.key, type as PrType);
    case ProutAction.RELEASE:
      return release(ctx, st, p.key, type as PrType);
    case ProutAction.CLEAR:
      return clear(ctx, st, p.key);
    case ProutAction.PREEMPT:
      return preempt(ctx, st, p, type as PrType, false);
    case ProutAction.PREEMPT_AND_ABORT:
      return preempt(ctx, st, p, type as PrType, true);
    default:
      throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 4));
  }
}

export async function persistentReserveOut(ctx: CommandContext): Promise<CommandResult> {
  const policy = prPolicyOf(ctx.lu);
  if (!policy) throw new SenseError('INVALID_OPCODE');
  const sa = ctx.cdb[1] & 0x1f;
  if (sa > ProutAction.REGISTER_AND_MOVE) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 4));
  const paramLen = ctx.cdb.readUInt32BE(5);
  const r = run(ctx, policy, sa, ctx.cdb[2] & 0x0f, paramLen);
  if (r !== 'changed') return { ...r, dataOutLength: paramLen };
  await policy.store.save(policy.state);
  return { dataOutLength: paramLen };
}

