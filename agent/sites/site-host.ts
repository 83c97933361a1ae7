// What the work above the backstores needs from the running agent (agent/main.ts provides it): the model,
// a serialized commit, the running logical units, the sessions, and the shell engine for its own commands.
import type { RootConfig } from '../config/schema.js';
import type { SessionInfo } from '../iscsi/server.js';
import type { Logger } from '../lib/log.js';
import type { LogicalUnit } from '../scsi/logical-unit.js';

export interface SiteHost {
  model(): RootConfig;
  /** Replaces the running configuration (validated; nothing changes on error). */
  commit(next: RootConfig): Promise<void>;
  unit(path: string): LogicalUnit | undefined;
  sessions(): SessionInfo[];
  /** One targetcli-style command line through the agent's shell engine. */
  shell(line: string): Promise<{ output: string[]; error: boolean }>;
  readonly log: Logger;
  /** The agent's state directory (a migration's upload cache lives under it). */
  readonly stateDir?: string;
}
