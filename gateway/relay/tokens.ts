// The relay's accepted agent tokens: one a line in --token-file, reloaded when the file changes or on SIGHUP.
// Tokens are compared in constant time and never logged: log lines name an agent by a short fingerprint.
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from 'pino';

/** A short, non-reversible name for a token in logs and limits (the first 12 hex of its SHA-256). */
export function fingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

export async function readTokens(path: string): Promise<Set<string>> {
  const text = await readFile(path, 'utf8');
  const out = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    out.add(line);
  }
  return out;
}

export class TokenFile {
  private tokens = new Set<string>();
  private digests: Buffer[] = [];
  private watching = false;

  constructor(
    private readonly path: string,
    private readonly log: Logger,
    /** Called with the fingerprints of tokens that a reload removed. */
    private readonly onRevoked: (fingerprints: string[]) => void,
  ) {}

  async load(): Promise<void> {
    const next = await readTokens(this.path);
    const removed = [...this.tokens].filter((t) => !next.has(t)).map(fingerprint);
    this.tokens = next;
    this.digests = [...next].map((t) => createHash('sha256').update(t).digest());
    this.log.info({ tokens: next.size, revoked: removed.length }, 'relay tokens loaded');
    if (removed.length) this.onRevoked(removed);
  }

  /** Reloads on change (polled: editors replace the file, which fs.watch loses track of). */
  watch(intervalMs = 1000): void {
    if (this.watching) return;
    this.watching = true;
    watchFile(this.path, { interval: intervalMs, persistent: false }, () => void this.reload());
  }

  async reload(): Promise<void> {
    try {
      await this.load();
    } catch (e) {
      // A token file that cannot be read keeps the last good set: an editor's half-written file must
      // not drop every agent.
      this.log.error({ err: (e as Error).message }, 'relay token file not reloaded; keeping the previous tokens');
    }
  }

  accepts(token: string): boolean {
    const d = createHash('sha256').update(token).digest();
    let ok = false;
    for (const x of this.digests) if (timingSafeEqual(x, d)) ok = true;
    return ok;
  }

  close(): void {
    if (this.watching) unwatchFile(this.path);
    this.watching = false;
  }
}
