// RFC 7143 §6.1: text keys — key=value pairs separated by NUL; value encodings (§6.1 decimal, hex, base64).

export class TextFormatError extends Error {}

const KEY_RE = /^[A-Za-z0-9.\-+@_:#]{1,63}$/;
export const MAX_TEXT_BYTES = 65536;

export type KeyValue = readonly [key: string, value: string];

/** Parses a (reassembled) text data segment. Tolerates a missing final NUL; rejects malformed pairs. */
export function parseText(buf: Buffer): KeyValue[] {
  if (buf.length > MAX_TEXT_BYTES) throw new TextFormatError(`text segment of ${buf.length} bytes is too long`);
  const out: KeyValue[] = [];
  let start = 0;
  while (start < buf.length) {
    let end = buf.indexOf(0, start);
    if (end < 0) end = buf.length;
    if (end > start) {
      const pair = buf.toString('utf8', start, end);
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new TextFormatError(`malformed text pair "${pair.slice(0, 64)}"`);
      const key = pair.slice(0, eq);
      if (!KEY_RE.test(key)) throw new TextFormatError(`malformed key "${key.slice(0, 64)}"`);
      out.push([key, pair.slice(eq + 1)]);
    }
    start = end + 1;
  }
  return out;
}

export function serializeText(pairs: readonly KeyValue[]): Buffer {
  if (pairs.length === 0) return Buffer.alloc(0);
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

/** RFC 7143 §6.1 numerical value: decimal, or hex with 0x. Returns undefined when malformed. */
export function parseNumber(v: string): number | undefined {
  if (/^[0-9]{1,16}$/.test(v)) return Number(v);
  if (/^0[xX][0-9a-fA-F]{1,16}$/.test(v)) return Number.parseInt(v.slice(2), 16);
  return undefined;
}

/** RFC 7143 §6.1 binary value: 0x hex or 0b base64. */
export function decodeBinary(v: string): Buffer | undefined {
  if (/^0[xX]([0-9a-fA-F]{2})+$/.test(v)) return Buffer.from(v.slice(2), 'hex');
  if (/^0[xX][0-9a-fA-F]+$/.test(v)) return Buffer.from('0' + v.slice(2), 'hex');
  if (/^0[bB][A-Za-z0-9+/]+=*$/.test(v)) return Buffer.from(v.slice(2), 'base64');
  return undefined;
}

export function encodeBinaryHex(b: Buffer): string {
  return '0x' + b.toString('hex');
}
