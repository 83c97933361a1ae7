// Block cache: which 512-byte sectors of a cached chunk hold valid data (a partial write to a chunk whose old
// content is still only in the bucket), or were written since the last upload. null elsewhere means "every sector".
export const SECTOR = 512;

export class SectorBitmap {
  readonly bits: Uint8Array;
  /** Sectors set. */
  count = 0;

  constructor(readonly sectors: number, bits?: Uint8Array) {
    this.bits = bits ?? new Uint8Array(Math.ceil(sectors / 8));
    if (this.bits.length !== Math.ceil(sectors / 8)) throw new Error('sector bitmap: wrong length');
    if (bits) for (let s = 0; s < sectors; s++) if (this.get(s)) this.count++;
  }

  static full(sectors: number): SectorBitmap {
    const b = new SectorBitmap(sectors);
    b.setRange(0, sectors);
    return b;
  }

  private get(s: number): boolean {
    return (this.bits[s >> 3]! & (1 << (s & 7))) !== 0;
  }

  private setRange(from: number, to: number): void {
    for (let s = from; s < to; s++) {
      const m = 1 << (s & 7);
      if (!(this.bits[s >> 3]! & m)) { this.bits[s >> 3]! |= m; this.count++; }
    }
  }

  /** Marks every sector wholly inside [start, end) bytes. */
  markBytes(start: number, end: number): void {
    this.setRange(Math.ceil(start / SECTOR), Math.floor(end / SECTOR));
  }

  /** Marks every sector touching [start, end) bytes. */
  markTouching(start: number, end: number): void {
    this.setRange(Math.floor(start / SECTOR), Math.ceil(end / SECTOR));
  }

  /** True when every sector touching [start, end) bytes is set. */
  coversBytes(start: number, end: number): boolean {
    for (let s = Math.floor(start / SECTOR), e = Math.ceil(end / SECTOR); s < e; s++) if (!this.get(s)) return false;
    return true;
  }

  get full(): boolean {
    return this.count === this.sectors;
  }

  /** Sets every sector `other` has (an upload that failed gives its sectors back). */
  or(other: SectorBitmap): void {
    for (let s = 0; s < this.sectors; s++) if (other.get(s)) this.setRange(s, s + 1);
  }

  /** Byte ranges [start, end) that are set (invert: that are not), within [from, to) bytes when given. */
  runs(invert = false, from = 0, to = this.sectors * SECTOR): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    const last = Math.ceil(to / SECTOR);
    let s = Math.floor(from / SECTOR);
    while (s < last) {
      if (this.get(s) === invert) { s++; continue; }
      const start = s;
      while (s < last && this.get(s) !== invert) s++;
      out.push([start * SECTOR, s * SECTOR]);
    }
    return out;
  }

  /** Byte ranges [start, end) that are not valid. */
  invalidRuns(from?: number, to?: number): Array<[number, number]> {
    return this.runs(true, from, to);
  }

  toBase64(): string {
    return Buffer.from(this.bits).toString('base64');
  }

  static fromBase64(sectors: number, b64: string): SectorBitmap {
    return new SectorBitmap(sectors, new Uint8Array(Buffer.from(b64, 'base64')));
  }
}
