// SPC-4 §6.37 TEST UNIT READY, §6.39 REQUEST SENSE; SBC-4 §5.27 START STOP UNIT.
import { trimToAllocation } from '../cdb.js';
import { AluaClass, DataDirection, ReservationClass, usage, type CommandContext, type CommandResult, type OpcodeEntry } from '../opcodes.js';
import type { ScsiCommand } from '../port.js';
import { buildSense, Reason, SenseError, cdbField, type ReasonName } from '../sense.js';

/** Sense data as parameter data, fixed (DESC=0) or descriptor format (DESC=1). */
function senseData(reason: ReasonName, desc: boolean): Buffer {
  if (!desc) return buildSense(reason);
  const [key, ascq] = Reason[reason];
  const b = Buffer.alloc(8);
  b[0] = 0x72;
  b[1] = key;
  b[2] = ascq >> 8;
  b[3] = ascq & 0xff;
  return b;
}

function requestSense(c: CommandContext): CommandResult {
  const pending = c.lu.ua.take(c.nexus.id);
  return { data: trimToAllocation(senseData(pending ?? 'NO_SENSE', (c.cdb[1] & 1) !== 0), c.cdb[4]) };
}

function requestSenseNoLun(cmd: ScsiCommand): CommandResult {
  return { data: trimToAllocation(senseData('LUN_NOT_SUPPORTED', (cmd.cdb[1] & 1) !== 0), cmd.cdb[4]) };
}

/** START STOP UNIT: a fixed, non-removable medium; power conditions other than START_VALID are not supported. */
function startStopUnit(c: CommandContext): CommandResult {
  const powerCondition = c.cdb[4] >> 4;
  if (powerCondition !== 0) throw new SenseError('INVALID_CDB_FIELD', cdbField(4, 7));
  if (c.cdb[3] & 0x0f) throw new SenseError('INVALID_CDB_FIELD', cdbField(3, 3));
  return {};
}

export const basicEntries: OpcodeEntry[] = [
  {
    opcode: 0x00,
    name: 'TEST UNIT READY',
    cdbLength: 6,
    usage: usage('00 00 00 00 00 00'),
    dir: DataDirection.NONE,
    reservation: ReservationClass.ALLOWED,
    alua: AluaClass.ACTIVE,
    handler: () => ({}),
  },
  {
    opcode: 0x03,
    name: 'REQUEST SENSE',
    cdbLength: 6,
    usage: usage('03 01 00 00 ff 00'),
    dir: DataDirection.IN,
    reservation: ReservationClass.ALLOWED,
    alua: AluaClass.ANY,
    skipUa: true,
    noLun: requestSenseNoLun,
    handler: requestSense,
  },
  {
    opcode: 0x1b,
    name: 'START STOP UNIT',
    cdbLength: 6,
    usage: usage('1b 01 00 0f f7 00'),
    dir: DataDirection.NONE,
    reservation: ReservationClass.EXCLUSIVE,
    alua: AluaClass.ACTIVE,
    handler: startStopUnit,
  },
];
