// RFC 1982 serial number arithmetic on 32-bit sequence numbers (CmdSN, StatSN, DataSN, R2TSN; RFC 7143 §4.2.2.1).

const HALF = 0x80000000;

export function serialAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** a < b in serial arithmetic. */
export function serialLt(a: number, b: number): boolean {
  a >>>= 0;
  b >>>= 0;
  return a !== b && ((a < b && b - a < HALF) || (a > b && a - b > HALF));
}

export function serialLte(a: number, b: number): boolean {
  return (a >>> 0) === (b >>> 0) || serialLt(a, b);
}

export function serialGt(a: number, b: number): boolean {
  return serialLt(b, a);
}

/** b - a as a signed distance (valid when |b - a| < 2^31). */
export function serialDiff(a: number, b: number): number {
  return ((b - a) | 0);
}
