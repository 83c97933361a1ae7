// The last applied policy snapshot, cached in the agent's state dir so it keeps serving while the
// gateway is unreachable. The whole snapshot (it holds CHAP secrets) is sealed with AES-256-GCM under
// <stateDir>/control.key (32 random bytes, mode 0600, generated on first use).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PolicySnapshot } from '../../shared/policy.js';

export const KEY_FILE = 'control.key';
export const CACHE_FILE = 'control-policy.json';
const AAD = Buffer.from('outpost control policy cache v1');

interface CacheFile { format: 1; version: number; iv: string; tag: string; data: string }

async function loadKey(stateDir: string, create: boolean): Promise<Buffer | undefined> {
  const file = join(stateDir, KEY_FILE);
  try {
    const key = await readFile(file);
    if (key.length !== 32) throw new Error(`${file} is not a 32-byte key`);
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || !create) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }
  await mkdir(stateDir, { recursive: true });
  const key = randomBytes(32);
  try {
    await writeFile(file, key, { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return loadKey(stateDir, false);
    throw e;
  }
  await chmod(file, 0o600);
  return key;
}

export async function saveCachedPolicy(stateDir: string, snapshot: PolicySnapshot): Promise<void> {
  const key = (await loadKey(stateDir, true))!;
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(AAD);
  const data = Buffer.concat([cipher.update(JSON.stringify(snapshot), 'utf8'), cipher.final()]);
  const body: CacheFile = { format: 1, version: snapshot.version, iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), data: data.toString('base64') };
  const file = join(stateDir, CACHE_FILE);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(body) + '\n', { mode: 0o600 });
  await rename(tmp, file);
}

/** The cached snapshot, or undefined when there is none; throws with a clear message if it cannot be read. */
export async function loadCachedPolicy(stateDir: string): Promise<PolicySnapshot | undefined> {
  let text: string;
  try {
    text = await readFile(join(stateDir, CACHE_FILE), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const key = await loadKey(stateDir, false);
  if (!key) throw new Error(`cached policy ${join(stateDir, CACHE_FILE)} exists but ${KEY_FILE} is missing`);
  try {
    const c = JSON.parse(text) as CacheFile;
    if (c.format !== 1) throw new Error(`unknown format ${String(c.format)}`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(c.iv, 'base64'));
    decipher.setAAD(AAD);
    decipher.setAuthTag(Buffer.from(c.tag, 'base64'));
    const plain = Buffer.concat([decipher.update(Buffer.from(c.data, 'base64')), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as PolicySnapshot;
  } catch (e) {
    throw new Error(`cached policy ${join(stateDir, CACHE_FILE)} is unreadable: ${(e as Error).message}`);
  }
}
