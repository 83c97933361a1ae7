// Block cache durability: the dirty journal. A flush fdatasyncs the chunk files written since the last
// flush, then atomically replaces journal.json (write tmp, fdatasync, rename, fsync dir). Concurrent
// flushes share one round (group commit); a flush always waits for a round that started after it.
import { mkdir, open, rename, readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface JournalState {
  version: 1;
  chunk_size: number;
  /** Chunks whose newest content is only in the cache: index and valid-sector bitmap (null: whole chunk). */
  dirty: Array<{ i: number; v: string | null }>;
  /** Chunks unmapped since the last manifest. */
  trimmed: number[];
  /**
   * Written by a clean close only: whole clean chunk files and the object id each is a copy of. The next
   * open keeps those whose id the loaded manifest still names (a warm cache); after a crash there is none.
   */
  clean?: Array<{ i: number; f: string; id: string }>;
}

export interface JournalRound {
  state: JournalState;
  /** Files to fdatasync before the journal names them. */
  files: string[];
  /** Directories whose entries changed (new chunk files). */
  dirs: string[];
  done(ok: boolean): void;
}

async function fsyncPath(path: string, datasync: boolean): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    await (datasync ? fh.datasync() : fh.sync());
  } finally {
    await fh.close();
  }
}

export async function readJournal(dir: string): Promise<JournalState | null> {
  let text: string;
  try {
    text = await readFile(join(dir, 'journal.json'), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const j = JSON.parse(text) as JournalState;
  if (j.version !== 1 || !Array.isArray(j.dirty) || !Array.isArray(j.trimmed)) throw new Error(`${dir}/journal.json: unrecognised journal`);
  return j;
}

export class Journal {
  private current: Promise<void> | null = null;
  private next: Promise<void> | null = null;
  /** The queued round is a full one (some caller of it asked for one). */
  private nextFull = false;
  rounds = 0;

  /** `begin(full)`: the round's state and files; a round that is not full (a trim) syncs no chunk file. */
  constructor(private readonly dir: string, private readonly begin: (full: boolean) => JournalRound) {}

  /**
   * A round that starts after this call. Full (a flush): every chunk file written since the last round is
   * fdatasynced and named. Not full (after a manifest, which only takes chunks out): the journal drops what
   * the bucket now holds and syncs no chunk file, so a commit does not force the whole cache to disk.
   */
  sync(full = true): Promise<void> {
    if (!this.current) {
      this.current = this.round(full).finally(() => { this.current = null; });
      return this.current;
    }
    this.nextFull ||= full;
    if (!this.next) {
      this.next = this.current.catch(() => undefined).then(() => {
        this.next = null;
        const f = this.nextFull;
        this.nextFull = false;
        return this.sync(f);
      });
    }
    return this.next;
  }

  private async round(full: boolean): Promise<void> {
    const r = this.begin(full);
    try {
      for (let i = 0; i < r.files.length; i += 8) await Promise.all(r.files.slice(i, i + 8).map((f) => fsyncPath(f, true)));
      for (const d of r.dirs) await fsyncPath(d, false);
      const tmp = join(this.dir, 'journal.tmp');
      const fh = await open(tmp, 'w').catch(async (e: NodeJS.ErrnoException) => {
        // The cache directory was removed under the running agent: recreate it rather than fail every flush.
        if (e.code !== 'ENOENT') throw e;
        await mkdir(this.dir, { recursive: true });
        return open(tmp, 'w');
      });
      try {
        await fh.writeFile(JSON.stringify(r.state));
        await fh.datasync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(this.dir, 'journal.json'));
      await fsyncPath(this.dir, false);
      this.rounds++;
      r.done(true);
    } catch (e) {
      r.done(false);
      throw e;
    }
  }
}
