// SPC-4 §6.4 EXTENDED COPY (LID1) and §6.18 RECEIVE COPY RESULTS: opcode table entries.
import { AluaClass, DataDirection, ReservationClass, usage, type OpcodeEntry } from '../opcodes.js';
import { extendedCopy } from './extended-copy.js';
import { receiveCopyResults } from './receive-copy-results.js';

export { thirdPartyCopyPage } from './vpd.js';

export const xcopyEntries: OpcodeEntry[] = [
  {
    opcode: 0x83,
    sa: 0x00,
    name: 'EXTENDED COPY(LID1)',
    cdbLength: 16,
    usage: usage('83 1f 00 00 00 00 00 00 00 00 ff ff ff ff 00 00'),
    dir: DataDirection.OUT,
    reservation: ReservationClass.WRITE,
    alua: AluaClass.ACTIVE,
    timeout: [60, 120],
    handler: extendedCopy,
  },
  ...([
    [0x00, 'RECEIVE COPY RESULTS(COPY STATUS)', '84 1f ff 00 00 00 00 00 00 00 ff ff ff ff 00 00'],
    [0x03, 'RECEIVE COPY RESULTS(OPERATING PARAMETERS)', '84 1f 00 00 00 00 00 00 00 00 ff ff ff ff 00 00'],
  ] as const).map(
    ([sa, name, mask]): OpcodeEntry => ({
      opcode: 0x84,
      sa,
      name,
      cdbLength: 16,
      usage: usage(mask),
      dir: DataDirection.IN,
      reservation: ReservationClass.READ,
      alua: AluaClass.ACTIVE,
      handler: receiveCopyResults,
    }),
  ),
];
