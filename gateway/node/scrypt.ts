// The gateway's key-derivation function (RFC 7914 scrypt) through node:crypto. The Workers adapter uses
// this file too: with the nodejs_compat flag (wrangler.toml) workerd provides the same node:crypto
// scrypt, so both runtimes derive the same key from the same OUTPOST_SECRET_KEY and salt. Web Crypto
// has no scrypt, and workerd caps PBKDF2 at 100,000 iterations (below OWASP's 600,000 for SHA-256).
import { scrypt } from 'node:crypto';
import type { Kdf } from '../crypto.js';

/** N = 2^15, r = 8, p = 1: 32 MiB and ~0.2 s once per start; fits a Worker's 128 MB. */
export const SCRYPT_PARAMS = { N: 1 << 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;

export const scryptKdf: Kdf = (secret, salt) =>
  new Promise((resolve, reject) => {
    scrypt(secret, salt, 32, SCRYPT_PARAMS, (err, key) => (err ? reject(err) : resolve(new Uint8Array(key.buffer, key.byteOffset, key.byteLength))));
  });
