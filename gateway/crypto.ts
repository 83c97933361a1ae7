// Secrets at rest (AES-256-GCM under a key derived from OUTPOST_SECRET_KEY with scrypt and a random
// per-store salt) and token hashing. Web Crypto only here (globalThis.crypto.subtle): runs on Workers
// and Node; the scrypt KDF itself is handed in by the runtime adapter (node:crypto on both runtimes).
// Envelopes are versioned: "v2." blobs use the scrypt key; "v1." blobs (HKDF-SHA-256, no salt — the
// derivation of earlier releases) still open, so an upgraded gateway reads what it stored before.
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

/** scrypt(secret, salt) → 32 bytes; each runtime adapter provides it (see gateway/node/scrypt.ts). */
export type Kdf = (secret: string, salt: Uint8Array) => Promise<Uint8Array>;

// 16 keeps keys accepted by earlier releases working; generated keys are 43 characters (32 random bytes).
export const SECRET_KEY_MIN = 16;
export const SECRET_KEY_MAX = 1024;

/** Why OUTPOST_SECRET_KEY cannot be used, or undefined when it can (checked before the gateway serves). */
export function secretKeyProblem(key: string | undefined): string | undefined {
  if (key === undefined || key === '') return 'OUTPOST_SECRET_KEY is not set';
  if (key.length < SECRET_KEY_MIN) return `OUTPOST_SECRET_KEY is ${key.length} characters; it must be at least ${SECRET_KEY_MIN} (e.g. openssl rand -base64 32)`;
  if (key.length > SECRET_KEY_MAX) return `OUTPOST_SECRET_KEY is longer than ${SECRET_KEY_MAX} characters`;
  if (!/^[\x20-\x7e]+$/.test(key)) return 'OUTPOST_SECRET_KEY must be printable ASCII (no newlines or control characters)';
  if (key !== key.trim()) return 'OUTPOST_SECRET_KEY has leading or trailing spaces';
  if (new Set(key).size < 8) return 'OUTPOST_SECRET_KEY has fewer than 8 distinct characters';
  return undefined;
}

export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Encrypts and decrypts small JSON values; `context` is bound as AAD so a blob cannot be moved between rows. */
export class SecretBox {
  private legacyKey: Promise<AesKey> | undefined;

  private constructor(private readonly key: AesKey, private readonly secret: string) {}

  static async fromSecret(secret: string, salt: Uint8Array, kdf: Kdf): Promise<SecretBox> {
    const problem = secretKeyProblem(secret);
    if (problem) throw new Error(problem);
    if (salt.length < 16) throw new Error('the key-derivation salt must be at least 16 bytes');
    const raw = await kdf(secret, salt);
    const key = await crypto.subtle.importKey('raw', raw, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt']);
    raw.fill(0);
    return new SecretBox(key, secret);
  }

  /** The key of "v1." blobs, derived only when one is met. */
  private static async legacy(secret: string): Promise<AesKey> {
    const ikm = await crypto.subtle.importKey('raw', enc.encode(secret), 'HKDF', false, ['deriveKey']);
    const key = await crypto.subtle.deriveKey(
      { name: 'HKDF', hash: 'SHA-256', salt: enc.encode('outpost-gateway'), info: enc.encode('secrets-at-rest-v1') },
      ikm,
      { name: 'AES-GCM', length: 256 },
      false,
      ['encrypt', 'decrypt'],
    );
    return key;
  }

  async seal(value: unknown, context: string): Promise<string> {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode(context) }, this.key, enc.encode(JSON.stringify(value))));
    const out = new Uint8Array(iv.length + ct.length);
    out.set(iv);
    out.set(ct, iv.length);
    return 'v2.' + toBase64(out);
  }

  async open<T>(blob: string, context: string): Promise<T> {
    let key: AesKey;
    if (blob.startsWith('v2.')) key = this.key;
    else if (blob.startsWith('v1.')) key = await (this.legacyKey ??= SecretBox.legacy(this.secret));
    else throw new Error('unknown secret format');
    const raw = fromBase64(blob.slice(3));
    const pt = await crypto.subtle.decrypt({ name: 'AES-GCM', iv: raw.subarray(0, 12), additionalData: enc.encode(context) }, key, raw.subarray(12));
    return JSON.parse(dec.decode(pt)) as T;
  }
}
