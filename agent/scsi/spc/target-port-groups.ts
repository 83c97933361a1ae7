// SPC-4 §6.37 REPORT TARGET PORT GROUPS and §6.46 SET TARGET PORT GROUPS (explicit ALUA).
import { dataOutBuffer, dataOutLength, trimToAllocation } from '../cdb.js';
import { AluaAccessState, AluaAccessType } from '../alua.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import { SenseError, cdbField, paramField } from '../sense.js';

const SUPPORTED_STATES = 0x80 | 0x08 | 0x04 | 0x02 | 0x01; // T_SUP, U_SUP, S_SUP, AN_SUP, AO_SUP

function reportTargetPortGroups(c: CommandContext): CommandResult {
  const format = c.cdb[1] >> 5;
  if (format > 1) throw new SenseError('INVALID_CDB_FIELD', cdbField(1, 7));
  const alloc = c.cdb.readUInt32BE(6);
  const groups = c.lu.alua.groups;
  const headerLen = format === 1 ? 8 : 4;
  let len = headerLen;
  for (const g of groups) len += 8 + 4 * g.ports.size;
  const b = Buffer.alloc(len);
  b.writeUInt32BE(len - 4, 0);
  if (format === 1) {
    b[4] = 0x10; // extended header
    b[5] = 0; // implicit transition time
  }
  let off = headerLen;
  for (const g of groups) {
    b[off] = (g.preferred ? 0x80 : 0) | (g.state & 0x0f);
    b[off + 1] = SUPPORTED_STATES | (g.state === AluaAccessState.OFFLINE ? 0x40 : 0);
    b.writeUInt16BE(g.id & 0xffff, off + 2);
    b[off + 5] = g.statusCode;
    const ports = [...g.ports].sort((a, z) => a - z);
    b[off + 7] = ports.length;
    off += 8;
    for (const p of ports) {
      b.writeUInt16BE(p & 0xffff, off + 2);
      off += 4;
    }
  }
  return { data: trimToAllocation(b, alloc) };
}

const SETTABLE = new Set<number>([
  AluaAccessState.ACTIVE_OPTIMIZED,
  AluaAccessState.ACTIVE_NON_OPTIMIZED,
  AluaAccessState.STANDBY,
  AluaAccessState.UNAVAILABLE,
]);

function setTargetPortGroups(c: CommandContext): CommandResult {
  const lu = c.lu;
  if (!lu.alua.anyExplicit) throw new SenseError('INVALID_OPCODE');
  const listLen = c.cdb.readUInt32BE(6);
  if (listLen === 0) return { dataOutLength: 0 };
  const avail = Math.min(listLen, dataOutLength(c.cmd));
  if (avail < 4) throw new SenseError('PARAMETER_LIST_LENGTH_ERROR');
  const p = dataOutBuffer(c.cmd, avail);
  const changes: [ReturnType<typeof lu.alua.byId>, number][] = [];
  for (let off = 4; off + 4 <= avail; off += 4) {
    const state = p[off] & 0x0f;
    const g = lu.alua.byId(p.readUInt16BE(off + 2));
    if (!g || (g.accessType & AluaAccessType.EXPLICIT) === 0) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off + 2));
    if (!SETTABLE.has(state)) throw new SenseError('INVALID_PARAMETER_LIST_FIELD', paramField(off, 3));
    changes.push([g, state]);
  }
  for (const [g, state] of changes) {
    if (!g || g.state === state) continue;
    g.state = state;
    g.statusCode = 1; // altered by SET TARGET PORT GROUPS
    lu.ua.establishOthers(c.nexus.id, 'ASYMMETRIC_ACCESS_STATE_CHANGED');
  }
  return { dataOutLength: avail };
}

export const targetPortGroupEntries: OpcodeEntry[] = [
  {
    opcode: 0xa3,
    sa: 0x0a,
    name: 'REPORT TARGET PORT GROUPS',
    cdbLength: 12,
    usage: usage('a3 ff 00 00 00 00 ff ff ff ff 00 00'),
    dir: DataDirection.IN,
    reservation: ReservationClass.ALLOWED,
    alua: AluaClass.ANY,
    handler: reportTargetPortGroups,
  },
  {
    opcode: 0xa4,
    sa: 0x0a,
    name: 'SET TARGET PORT GROUPS',
    cdbLength: 12,
    usage: usage('a4 1f 00 00 00 00 ff ff ff ff 00 00'),
    dir: DataDirection.OUT,
    reservation: ReservationClass.EXCLUSIVE,
    alua: AluaClass.UNAVAILABLE,
    handler: setTargetPortGroups,
  },
];
