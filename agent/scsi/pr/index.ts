// SPC-4 §6.15/§6.16 PERSISTENT RESERVE IN/OUT and SPC-2 RESERVE/RELEASE: opcode table entries.
import { AluaClass, DataDirection, ReservationClass, usage, type OpcodeEntry } from '../opcodes.js';
import { RELEASE10, RELEASE6, RESERVE10, RESERVE6 } from './policy.js';
import { persistentReserveIn } from './prin.js';
import { persistentReserveOut } from './prout.js';
import { release, reserve } from './spc2.js';

export { installPersistentReservations, prPolicyOf, PrPolicy } from './policy.js';

const meta = { reservation: ReservationClass.RESERVATION, alua: AluaClass.STANDBY } as const;

const PRIN_NAMES = ['READ KEYS', 'READ RESERVATION', 'REPORT CAPABILITIES', 'READ FULL STATUS'];
const PROUT_NAMES = ['REGISTER', 'RESERVE', 'RELEASE', 'CLEAR', 'PREEMPT', 'PREEMPT AND ABORT', 'REGISTER AND IGNORE EXISTING KEY', 'REGISTER AND MOVE'];

export const prEntries: OpcodeEntry[] = [
  ...PRIN_NAMES.map(
    (n, sa): OpcodeEntry => ({ ...meta, opcode: 0x5e, sa, name: `PERSISTENT RESERVE IN (${n})`, cdbLength: 10, usage: usage('5e 1f 00 00 00 00 00 ff ff 00'), dir: DataDirection.IN, handler: persistentReserveIn }),
  ),
  ...PROUT_NAMES.map(
    (n, sa): OpcodeEntry => ({ ...meta, opcode: 0x5f, sa, name: `PERSISTENT RESERVE OUT (${n})`, cdbLength: 10, usage: usage('5f 1f ff 00 00 ff ff ff ff 00'), dir: DataDirection.OUT, handler: persistentReserveOut }),
  ),
  { ...meta, opcode: RESERVE6, name: 'RESERVE(6)', cdbLength: 6, usage: usage('16 00 00 00 00 00'), dir: DataDirection.NONE, handler: reserve },
  { ...meta, opcode: RELEASE6, name: 'RELEASE(6)', cdbLength: 6, usage: usage('17 00 00 00 00 00'), dir: DataDirection.NONE, handler: release },
  { ...meta, opcode: RESERVE10, name: 'RESERVE(10)', cdbLength: 10, usage: usage('56 00 00 00 00 00 00 00 00 00'), dir: DataDirection.NONE, handler: reserve },
  { ...meta, opcode: RELEASE10, name: 'RELEASE(10)', cdbLength: 10, usage: usage('57 00 00 00 00 00 00 00 00 00'), dir: DataDirection.NONE, handler: release },
];
