// Local admin API wire format: one JSON object per line over a Unix socket (<stateDir>/admin.sock, mode 0600).
import { join } from 'node:path';

export interface AdminRequest {
  id: number;
  op: 'exec' | 'complete' | 'ping';
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
}

export const MAX_LINE = 1 << 20;

export function adminSocketPath(stateDir: string): string {
  return join(stateDir, 'admin.sock');
}
