// Shell preferences (targetcli's ~/.targetcli/prefs.bin) kept as JSON in the agent's state dir. Bookmarks
// live there too, as an object under "bookmarks"; over the PrefValue interface they travel as JSON text.
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BOOKMARKS_PREF, DEFAULT_PREFS, type PrefValue } from './host.js';

export class PrefsStore {
  private values: Record<string, PrefValue> = {};
  private bookmarks: Record<string, string> = {};

  constructor(private readonly file?: string) {
    if (!file) return;
    try {
      const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      for (const [k, v] of Object.entries(doc)) if (k in DEFAULT_PREFS && typeof v === typeof DEFAULT_PREFS[k]) this.values[k] = v as PrefValue;
      this.bookmarks = sanitize(doc[BOOKMARKS_PREF]);
    } catch {
      // no prefs yet: defaults
    }
  }

  all(): Record<string, PrefValue> {
    return { ...DEFAULT_PREFS, ...this.values, [BOOKMARKS_PREF]: JSON.stringify(this.bookmarks) };
  }

  async set(name: string, value: PrefValue): Promise<void> {
    if (name === BOOKMARKS_PREF) {
      let doc: unknown;
      try {
        doc = JSON.parse(String(value));
      } catch {
        throw new Error('bookmarks: not a JSON object');
      }
      this.bookmarks = sanitize(doc);
    } else this.values[name] = value;
    if (!this.file) return;
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, JSON.stringify({ ...this.values, [BOOKMARKS_PREF]: this.bookmarks }, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.file);
  }
}

function sanitize(doc: unknown): Record<string, string> {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return {};
  return Object.fromEntries(Object.entries(doc as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string' && e[1].startsWith('/')));
}
