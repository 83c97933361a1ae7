// The default opcode table: every SPC-4 and SBC-4 command this core implements.
// Persistent reservations and EXTENDED COPY register their entries here too (pr*.ts, xcopy*.ts).
import { OpcodeTable } from './opcodes.js';
import { sbcEntries } from './sbc/index.js';
import { spcEntries } from './spc/index.js';

export function defaultOpcodeTable(): OpcodeTable {
  const t = new OpcodeTable();
  t.register(...spcEntries, ...sbcEntries);
  return t;
}
