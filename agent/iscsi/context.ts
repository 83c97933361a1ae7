// Shared state of one iSCSI server handed to every connection (registry, core, sessions, timers).
import type { Logger } from '../lib/log.js';
import type { TargetCore } from '../scsi/port.js';
import type { SessionTable } from './session.js';
import type { TargetRegistry } from './target-registry.js';
import type { LoginThrottle } from './login/throttle.js';

export interface ServerContext {
  readonly registry: TargetRegistry;
  readonly core: TargetCore;
  readonly log: Logger;
  readonly sessions: SessionTable;
  readonly nopInIntervalMs: number;
  readonly nopInTimeoutMs: number;
  readonly loginTimeoutMs: number;
  /** Failed-login backoff shared by every portal of the server. */
  readonly throttle: LoginThrottle;
  /** Data-Out bytes one session may have solicited or buffered at once; commands beyond it get TASK SET FULL. */
  readonly maxSessionDataOutBytes: number;
  /** True once close() started: no new logins. */
  readonly closing: boolean;
  /** Handed in by the composition root when metrics are on (lower layers never import metrics). */
  readonly counters?: FabricCounters;
}

export interface FabricCounters {
  /** A login refused with this Login Response status (class << 8 | detail). */
  loginFailed(status: number): void;
}

/** LIO's default_cmdsn_depth when the TPG does not set it. */
export const DEFAULT_CMDSN_DEPTH = 64;

export function cmdsnDepth(attributes: Readonly<Record<string, number | string | boolean>> | undefined): number {
  const v = Number(attributes?.default_cmdsn_depth ?? DEFAULT_CMDSN_DEPTH);
  return Number.isInteger(v) && v >= 1 && v <= 512 ? v : DEFAULT_CMDSN_DEPTH;
}
