// SAM-5 §4.7: the 8-byte LUN field as iSCSI carries it (peripheral and flat addressing).

/** Decodes the first level of a SAM LUN. Peripheral (00b) for 0..255, flat (01b) for 256..16383. */
export function decodeLun(b: Buffer, off: number): number {
  const method = b[off]! >> 6;
  if (method === 1) return ((b[off]! & 0x3f) << 8) | b[off + 1]!;
  if (method === 0 && (b[off]! & 0x3f) === 0) return b[off + 1]!;
  // Bus numbers and other methods: keep the raw 16 bits so they never alias a real LUN.
  return 0x10000 | (b[off]! << 8) | b[off + 1]!;
}

export function encodeLun(lun: number, b: Buffer, off: number): void {
  b.fill(0, off, off + 8);
  if (lun >= 0x10000) {
    b[off] = (lun >> 8) & 0xff;
    b[off + 1] = lun & 0xff;
  } else if (lun < 256) {
    b[off + 1] = lun;
  } else {
    b[off] = 0x40 | ((lun >> 8) & 0x3f);
    b[off + 1] = lun & 0xff;
  }
}
