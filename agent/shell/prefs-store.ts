// Shell preferences (targetcli's ~/.targetcli/prefs.bin) kept as JSON in the agent's state dir.
import { readFileSync } from 'node:fs';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DEFAULT_PREFS, type PrefValue } from './host.js';

export class PrefsStore {
  private values: Record<string, PrefValue> = {};

  constructor(private readonly file?: string) {
    if (!file) return;
    try {
      const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      for (const [k, v] of Object.entries(doc)) if (k in DEFAULT_PREFS && typeof v === typeof DEFAULT_PREFS[k]) this.values[k] = v as PrefValue;
    } catch {
      // no prefs yet: defaults
    }
  }

  all(): Record<string, PrefValue> {
    return { ...DEFAULT_PREFS, ...this.values };
  }

  async set(name: string, value: PrefValue): Promise<void> {
    this.values[name] = value;
    if (!this.file) return;
    await mkdir(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    await writeFile(tmp, JSON.stringify(this.values, null, 2) + '\n', { mode: 0o600 });
    await rename(tmp, this.file);
  }
}
