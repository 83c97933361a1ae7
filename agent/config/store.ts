// saveconfig.json on disk: read (missing file = empty config), atomic save (tmp + fsync + rename + dir fsync)
// keeping the previous configurations in backup/ beside the file, as targetcli does (max 10).
import { mkdir, open, readFile, readdir, rename, unlink, copyFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ConfigError, loadConfig } from './load.js';
import { serializeConfig } from './dump.js';
import { emptyRoot, type RootConfig } from './schema.js';

export const KEPT_BACKUPS = 10;

export async function readConfigFile(path: string): Promise<{ root: RootConfig; exists: boolean }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { root: emptyRoot(), exists: false };
    throw new ConfigError(`cannot read ${path}: ${(err as Error).message}`);
  }
  if (text.trim() === '') return { root: emptyRoot(), exists: true };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message}`);
  }
  try {
    return { root: loadConfig(doc), exists: true };
  } catch (err) {
    throw new ConfigError(`${path}: ${(err as Error).message}`);
  }
}

function stamp(d = new Date()): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch {
    // some filesystems refuse directory fsync; the rename is still atomic
  } finally {
    await fh.close();
  }
}

/** Copies the current file into backup/ (when it differs from the newest backup) and prunes to KEPT_BACKUPS. */
async function backup(path: string): Promise<string | undefined> {
  let current: string;
  try {
    current = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  const dir = join(dirname(path), 'backup');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const stem = basename(path).replace(/\.json$/, '');
  const list = (await readdir(dir)).filter((f) => f.startsWith(`${stem}-`) && f.endsWith('.json')).sort();
  const newest = list.at(-1);
  if (newest === undefined || (await readFile(join(dir, newest), 'utf8')) !== current) {
    const name = `${stem}-${stamp()}.json`;
    await copyFile(path, join(dir, name));
    list.push(name);
  }
  for (const f of list.slice(0, Math.max(0, list.length - KEPT_BACKUPS))) await unlink(join(dir, f)).catch(() => {});
  return dir;
}

/** Writes `root` to `path` atomically (mode 0600: it holds CHAP secrets). Returns the backup directory. */
export async function saveConfigFile(path: string, root: RootConfig): Promise<string> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const backupDir = (await backup(path)) ?? join(dir, 'backup');
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(serializeConfig(root));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncDir(dir);
  return backupDir;
}
