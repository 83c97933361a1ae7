// What the shell engine needs from whoever owns the configuration: the running agent, or the saved file.
import type { RootConfig } from '../config/schema.js';
import type { JobSnapshot } from '../jobs.js';
import type { SoInfo } from './tree.js';
import type { VolumeDescriptor } from '../backstores/object/format.js';
import type { VolumeLocation } from '../sites/restore.js';
import type { Backstore } from '../backstores/backstore.js';

export class ShellError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShellError';
  }
}

export type PrefValue = boolean | number | string;

/** Pref key carrying the bookmarks (JSON object name → path) between engine, host and PrefsStore. */
export const BOOKMARKS_PREF = 'bookmarks';

/** targetcli's global preferences that change command behaviour (configshell prefs). */
export const DEFAULT_PREFS: Readonly<Record<string, PrefValue>> = {
  // RHEL 7 targetcli (and the walk-throughs written for it): a new TPG has no portal until one is created.
  // RHEL 8 adds 0.0.0.0:3260; `set global auto_add_default_portal=true` restores that.
  auto_add_default_portal: false,
  auto_add_mapped_luns: true,
  auto_cd_after_create: false,
  auto_enable_tpgt: true,
  auto_save_on_exit: true,
  export_backstore_name_as_model: true,
  max_backup_files: 10,
  tree_max_depth: 0,
  tree_round_nodes: true,
  tree_show_root: true,
  tree_status_mode: true,
};

export interface ShellHost {
  /** The saveconfig.json that saveconfig writes and the agent loads. */
  readonly configPath: string;
  /** The current model (managed ACLs included). Callers must not mutate it. */
  model(): RootConfig;
  /** Validates `next`, makes it the running configuration; throws (changing nothing) when it cannot. */
  commit(next: RootConfig): Promise<void>;
  /** Writes the current model to `path` (default configPath); returns the backup directory. */
  save(path?: string): Promise<string>;
  /** Running facts about a storage object (size, open error). */
  soInfo(path: string): SoInfo | undefined;
  /** Whether a portal of the model is listening (a saved one may not bind at start); absent offline. */
  portalListening?(ip: string, port: number): boolean;
  prefs(): Record<string, PrefValue>;
  setPref(name: string, value: PrefValue): Promise<void>;
  /** Lines for `status` at the root (sessions, LUN health); absent offline. */
  status?(): string[];
  /** Lines for `sessions`; absent offline. */
  sessions?(): string[];
  /** Running and recent long work (agent/jobs.ts); absent offline. */
  jobs?(): JobSnapshot[];
  /** Starts the upload of an object volume's dirty data (`flush`); its job and the dirty bytes at the start. */
  flushToBucket?(path: string): { job: number; dirtyBytes: number };
  /** volume.json at a bucket location (null: none there); throws when the bucket cannot be read. Absent offline. */
  probeVolume?(loc: VolumeLocation): Promise<VolumeDescriptor | null>;
  /** Runs an action on a running storage object (`promote`); returns its messages. Absent offline. */
  soAction?(path: string, action: string, args: Readonly<Record<string, string | undefined>>): Promise<string[]>;
  /** Asks the gateway to start a migration (POST /v1/migrations body) and follows it as a job on `subject`; absent offline. */
  migrate?(subject: string, body: Record<string, unknown>): Promise<string[]>;
  /** The running backstore of a storage object path (snapshot commands); absent offline. */
  backstore?(path: string): Backstore | undefined;
  /** State of a running tunnel (`tunnels ls`); absent offline. */
  tunnelInfo?(target: string, tag: number, url: string): string | undefined;
}
