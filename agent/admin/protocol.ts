// Local admin API wire format: one JSON object per line over a Unix socket (<stateDir>/admin.sock, mode 0600).
import { join } from 'node:path';
import type { JobSnapshot } from '../jobs.js';

export interface AdminRequest {
  id: number;
  /** watch: progress frames of job `job` until it ends; unwatch: stop the frames of the watch request `watch`. */
  op: 'exec' | 'complete' | 'ping' | 'watch' | 'unwatch';
  job?: number;
  watch?: number;
  cwd?: string;
  prevCwd?: string;
  line?: string;
  width?: number;
  interactive?: boolean;
}

export interface AdminResponse {
  id: number;
  ok: boolean;
  output?: string[];
  error?: boolean;
  cwd?: string;
  prevCwd?: string;
  exit?: boolean;
  candidates?: string[];
  configPath?: string;
  message?: string;
  /** exec: the command started or waits on this job; the client follows it with a watch. */
  job?: number;
  /** watch: one frame (several per request, throttled); `final` on the last, when the job has ended. */
  progress?: JobSnapshot;
  final?: boolean;
}

/** Least time between two progress frames of one watch. */
export const WATCH_FRAME_MS = 200;

export const MAX_LINE = 1 << 20;

export function adminSocketPath(stateDir: string): string {
  return join(stateDir, 'admin.sock');
}
