// SPC-4: the primary command set's opcode table entries.
import type { OpcodeEntry } from '../opcodes.js';
import { basicEntries } from './basic.js';
import { inquiryEntry } from './inquiry.js';
import { modeEntries } from './mode.js';
import { prEntries } from '../pr/index.js';
import { xcopyEntries } from '../xcopy/index.js';
import { reportLunsEntry } from './report-luns.js';
import { reportOpcodeEntries } from './report-opcodes.js';
import { targetPortGroupEntries } from './target-port-groups.js';

export const spcEntries: OpcodeEntry[] = [inquiryEntry, reportLunsEntry, ...basicEntries, ...modeEntries, ...reportOpcodeEntries, ...targetPortGroupEntries, ...prEntries, ...xcopyEntries];
