// Offline shell host: no agent is running, so the shell edits saveconfig.json itself (every change is saved).
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { dumpConfig } from '../config/dump.js';
import { loadConfig } from '../config/load.js';
import type { RootConfig } from '../config/schema.js';
import { readConfigFile, saveConfigFile } from '../config/store.js';
import type { PrefValue, ShellHost } from './host.js';
import { PrefsStore } from './prefs-store.js';

export async function openFileHost(configPath: string, stateDir?: string): Promise<ShellHost> {
  let model: RootConfig = (await readConfigFile(configPath)).root;
  const prefs = new PrefsStore(stateDir ? join(stateDir, 'prefs.json') : undefined);
  return {
    configPath,
    model: () => model,
    async commit(next) {
      const checked = loadConfig(dumpConfig(next));
      await saveConfigFile(configPath, checked);
      model = checked;
    },
    async save(path) {
      return saveConfigFile(path ?? configPath, model);
    },
    soInfo(path) {
      const so = model.storage_objects.find((s) => `/backstores/${s.plugin === 'rd_mcp' ? 'ramdisk' : s.plugin}/${s.name}` === path);
      if (so?.plugin === 'block' && so.dev) {
        try {
          return { size: statSync(so.dev).size };
        } catch {
          return { error: `${so.dev} not found` };
        }
      }
      return undefined;
    },
    prefs: () => prefs.all(),
    setPref: (name: string, value: PrefValue) => prefs.set(name, value),
  };
}
