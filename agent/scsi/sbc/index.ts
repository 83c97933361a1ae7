// SBC-4: the block command set's opcode table entries.
import type { OpcodeEntry } from '../opcodes.js';
import { capacityEntries } from './capacity.js';
import { compareAndWriteEntries } from './compare-and-write.js';
import { defectEntries } from './defects.js';
import { readWriteEntries } from './read-write.js';
import { unmapEntries } from './unmap.js';
import { verifyEntries } from './verify.js';

export const sbcEntries: OpcodeEntry[] = [...readWriteEntries, ...verifyEntries, ...capacityEntries, ...unmapEntries, ...compareAndWriteEntries, ...defectEntries];
