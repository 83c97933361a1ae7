// docs/bucket-format.md §Encryption: AES-256-GCM per record (random 96-bit nonce, 128-bit tag), the volume key
// from a key file or the environment, and a key check value so a wrong key is told apart from a corrupt object.
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';

export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
/** Bytes a sealed record adds to its plaintext. */
export const SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES;

/** Environment variable holding a volume's key (64 hex digits): OUTPOST_VOLUME_KEY_<NAME>, NAME upper-cased, other characters as _. */
export function keyEnvName(volume: string): string {
  return `OUTPOST_VOLUME_KEY_${volume.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

function parseKey(text: string, from: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`${from}: the volume key must be 64 hex digits (32 bytes)`);
  return Buffer.from(hex, 'hex');
}

/** The volume key, or null when the volume is not encrypted: `keyFile` wins over the environment. */
export async function loadVolumeKey(volume: string, keyFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<Buffer | null> {
  if (keyFile) {
    let text: string;
    try {
      text = await readFile(keyFile, 'utf8');
    } catch (e) {
      throw new Error(`encryption_key_file ${keyFile}: ${(e as Error).message}`, { cause: e });
    }
    return parseKey(text, `encryption_key_file ${keyFile}`);
  }
  const v = env[keyEnvName(volume)];
  return v ? parseKey(v, keyEnvName(volume)) : null;
}

export function keyCheck(key: Buffer): string {
  return createHmac('sha256', key).update('outpost-key-check').digest().subarray(0, 16).toString('hex');
}

/** nonce ‖ ciphertext ‖ tag. */
export function seal(key: Buffer, plain: Buffer): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  const body = Buffer.concat([nonce, c.update(plain), c.final(), c.getAuthTag()]);
  return body;
}

/** Opens a sealed record; throws when the tag does not verify (wrong key or tampered record). */
export function open(key: Buffer, stored: Buffer): Buffer {
  if (stored.length < SEAL_OVERHEAD) throw new Error('sealed record too short');
  const d = createDecipheriv('aes-256-gcm', key, stored.subarray(0, NONCE_BYTES));
  d.setAuthTag(stored.subarray(stored.length - TAG_BYTES));
  return Buffer.concat([d.update(stored.subarray(NONCE_BYTES, stored.length - TAG_BYTES)), d.final()]);
}
