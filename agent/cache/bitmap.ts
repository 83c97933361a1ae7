// Block cache: which 512-byte sectors of a cached chunk hold valid data (a partial write to a chunk whose old
// content is still only in the bucket). null elsewhere means "the whole chunk is valid".
export const SECTOR = 512;

export class SectorBitmap {
  readonly bits: Uint8Array;
  constructor(readonly sectors: number, bits?: Uint8Array) {
    this.bits = bits ?? new Uint8Array(Math.ceil(sectors / 8));
    if (this.bits.length !== Math.ceil(sectors / 8)) throw new Error('sector bitmap: wrong length');
  }

  private get(s: number): boolean {
    return (this.bits[s >> 3]! & (1 << (s & 7))) !== 0;
  }

  /** Marks every sector wholly inside [start, end) bytes valid. */
  markBytes(start: number, end: number): void {
    for (let s = Math.ceil(start / SECTOR), e = Math.floor(end / SECTOR); s < e; s++) this.bits[s >> 3]! |= 1 << (s & 7);
  }

  /** True when every sector touching [start, end) bytes is valid. */
  coversBytes(start: number, end: number): boolean {
    for (let s = Math.floor(start / SECTOR), e = Math.ceil(end / SECTOR); s < e; s++) if (!this.get(s)) return false;
    return true;
  }

  get full(): boolean {
    for (let s = 0; s < this.sectors; s++) if (!this.get(s)) return false;
    return true;
  }

  /** Byte ranges [start, end) that are not valid. */
  invalidRuns(): Array<[number, number]> {
    const runs: Array<[number, number]> = [];
    let s = 0;
    while (s < this.sectors) {
      if (this.get(s)) { s++; continue; }
      const from = s;
      while (s < this.sectors && !this.get(s)) s++;
      runs.push([from * SECTOR, s * SECTOR]);
    }
    return runs;
  }

  toBase64(): string {
    return Buffer.from(this.bits).toString('base64');
  }

  static fromBase64(sectors: number, b64: string): SectorBitmap {
    return new SectorBitmap(sectors, new Uint8Array(Buffer.from(b64, 'base64')));
  }
}
