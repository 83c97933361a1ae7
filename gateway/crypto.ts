// Secrets at rest (AES-256-GCM, key from HKDF-SHA-256 over OUTPOST_SECRET_KEY) and token hashing.
// Web Crypto only (globalThis.crypto.subtle): runs on Workers and Node.
type AesKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;
const enc = new TextEncoder();
const dec = new TextDecoder();

function toBase64(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s;
}

export async function sha256Hex(text: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', enc.encode(text))));
}

/** A random bearer token for an agent (256 bits, URL-safe). */
export function newToken(): string {
  const b = crypto.getRandomValues(new Uint8Array(32));
  return 'opa_' + toBase64(b).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Constant-time comparison of two strings through their SHA-256 digests. */
export async function safeEqual(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([sha256Hex(a), sha256Hex(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x.charCodeAt(i) ^ y.charCodeAt(i);
  return diff === 0;
}

/** Encrypts and decrypts small JSON values; `context` is bound as AAD so a blob cannot be moved between rows. */
export class SecretBox {
  private constructor(private readonly key: AesKey) {}

  static async fromSecret(secret: string): Promise<SecretBox> {
    if (secret.length < 16) throw new Error('OUTPOST_SECRET_KEY must be at least 16 characters');
    const ikm = await crypto.subtle.importKey('raw', enc.encode(secret), 'HKDF', false, ['deriveKey']);
    const key = await crypto.subtle.deriveKey(
      { name: 'HKDF', hash: 'SHA-256', salt: enc.encode('outpost-gateway'), info: enc.encode('secrets-at-rest-v1') },
      ikm,
      { name: 'AES-GCM', length: 256 },
      false,
      ['encrypt', 'decrypt'],
    );
    return new SecretBox(key);
  }

  async seal(value: unknown, context: string): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode(context) }, this.key, enc.encode(JSON.stringify(value))));
    const out = new Uint8Array(iv.length + ct.length);
    out.set(iv);
    out.set(ct, iv.length);
    return 'v1.' + toBase64(out);
  }

  async open<T>(blob: string, context: string): Promise<T> {
    if (!blob.startsWith('v1.')) throw new Error('unknown secret format');
    const raw = fromBase64(blob.slice(3));
    const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: raw.subarray(0, 12), additionalData: enc.encode(context) }, this.key, raw.subarray(12));
    return JSON.parse(dec.decode(pt)) as T;
  }
}
