// One agent per --state-dir (issue 17): an exclusive lock file taken before anything reads the cache or the
// bucket. O_EXCL create, a pid + process start time inside, and stale detection so a kill -9 never wedges it.
import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export const LOCK_FILE = 'agent.lock';

interface LockBody { pid: number; start: string | null; token: string; since: string }

/** Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22), or null off Linux. Tells a reused pid apart. */
async function startTimeOf(pid: number): Promise<string | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
  } catch {
    return null;
  }
}

async function alive(body: LockBody): Promise<boolean> {
  try {
    process.kill(body.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (body.start === null) return true;
  const now = await startTimeOf(body.pid);
  return now === null || now === body.start;
}

async function readBody(path: string): Promise<LockBody | null> {
  try {
    const b = JSON.parse(await readFile(path, 'utf8')) as LockBody;
    return Number.isSafeInteger(b.pid) && typeof b.token === 'string' ? b : null;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw e;
    return null; // torn or foreign content: a crash between create and write
  }
}

export class StateDirLockedError extends Error {
  constructor(readonly stateDir: string, readonly pid: number) {
    super(`another Outpost agent (pid ${pid}) is running on state dir ${stateDir}; stop it first or use another --state-dir`);
    this.name = 'StateDirLockedError';
  }
}

export interface StateDirLock {
  release(): Promise<void>;
}

/**
 * Takes `<stateDir>/agent.lock` or throws StateDirLockedError. The body is written to a private file and
 * hard-linked into place, so the lock never exists half-written; a lock whose process is gone is moved
 * aside by rename (atomic: of two agents clearing the same stale lock, one wins) and taken again.
 */
export async function lockStateDir(stateDir: string): Promise<StateDirLock> {
  const path = join(stateDir, LOCK_FILE);
  const body: LockBody = { pid: process.pid, start: await startTimeOf(process.pid), token: randomBytes(8).toString('hex'), since: new Date().toISOString() };
  const tmp = join(stateDir, `.agent.lock.${body.token}`);
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(JSON.stringify(body) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    for (let attempt = 0; attempt < 10; attempt++) {
      try {
        await link(tmp, path);
        return {
          async release() {
            const cur = await readBody(path).catch(() => null);
            if (cur?.token === body.token) await unlink(path).catch(() => undefined);
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let held: LockBody | null;
      try {
        held = await readBody(path);
      } catch {
        continue; // released meanwhile
      }
      if (held && (await alive(held))) throw new StateDirLockedError(stateDir, held.pid);
      const aside = join(stateDir, `.agent.lock.stale.${body.token}`);
      try {
        await rename(path, aside);
      } catch {
        continue;
      }
      // The rename may have caught a live agent's fresh lock that replaced the stale one: put it back.
      const moved = await readBody(aside).catch(() => null);
      if (moved && moved.token !== held?.token && (await alive(moved))) {
        await link(aside, path).catch(() => undefined);
        await unlink(aside).catch(() => undefined);
        throw new StateDirLockedError(stateDir, moved.pid);
      }
      await unlink(aside).catch(() => undefined);
    }
    throw new Error(`could not take the lock ${path}`);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}
