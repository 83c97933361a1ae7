// SPC-4 §7.8.17 Third-party Copy VPD page (8Fh): the commands and descriptors this copy manager implements.
import { IMPLEMENTED_DESCRIPTORS, XcopyLimits } from './params.js';

function descriptor(type: number, body: Buffer): Buffer {
  const padded = (body.length + 3) & ~3;
  const b = Buffer.alloc(4 + padded);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(padded, 2);
  body.copy(b, 4);
  return b;
}

/** Supported Commands (0001h): EXTENDED COPY (LID1) and RECEIVE COPY RESULTS service actions. */
function supportedCommands(): Buffer {
  const cmds = [
    [0x83, [0x00]],
    [0x84, [0x00, 0x03]],
  ] as const;
  const list = Buffer.concat(cmds.map(([op, sas]) => Buffer.from([op, sas.length, ...sas])));
  return descriptor(0x0001, Buffer.concat([Buffer.from([list.length]), list]));
}

/** Parameter Data (0004h). */
function parameterData(): Buffer {
  const b = Buffer.alloc(28);
  b.writeUInt16BE(XcopyLimits.maxTargetDescriptors, 4);
  b.writeUInt16BE(XcopyLimits.maxSegmentDescriptors, 6);
  b.writeUInt32BE(XcopyLimits.maxDescriptorListLength, 8);
  b.writeUInt32BE(XcopyLimits.maxInlineData, 12);
  return descriptor(0x0004, b);
}

/** Supported Descriptors (0008h). */
function supportedDescriptors(): Buffer {
  return descriptor(0x0008, Buffer.from([IMPLEMENTED_DESCRIPTORS.length, ...IMPLEMENTED_DESCRIPTORS]));
}

/** Supported CSCD Descriptor IDs (000Ch): none beyond the descriptors themselves. */
function supportedCscdIds(): Buffer {
  return descriptor(0x000c, Buffer.alloc(2));
}

/** The whole page, header included. */
export function thirdPartyCopyPage(): Buffer {
  const body = Buffer.concat([supportedCommands(), parameterData(), supportedDescriptors(), supportedCscdIds()]);
  const b = Buffer.alloc(4 + body.length);
  b[1] = 0x8f;
  b.writeUInt16BE(body.length, 2);
  body.copy(b, 4);
  return b;
}
