// A shell session as the CLI sees it: the running agent over the admin API, or the saved file in-process.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AdminClient } from '../admin/client.js';
import { adminSocketPath } from '../admin/protocol.js';
import type { JobSnapshot } from '../jobs.js';
import { ShellEngine, type ExecResult } from './engine.js';
import { openFileHost } from './file-host.js';

export interface ShellSession {
  readonly live: boolean;
  readonly configPath: string;
  exec(req: { cwd: string; prevCwd: string; line: string; width?: number; interactive?: boolean }): Promise<ExecResult>;
  complete(req: { cwd: string; line: string }): Promise<string[]>;
  /** Progress frames of a job of the running agent until it ends (agent/shell/progress.ts); absent offline. */
  watch?(job: number, frame: (s: JobSnapshot) => void): { done: Promise<JobSnapshot | undefined>; detach(): void };
  close(): void;
}

export const DEFAULT_STATE_DIR = '/var/lib/outpost';
export const DEFAULT_CONFIG = '/etc/outpost/saveconfig.json';

export async function openSession(opts: { stateDir: string; configPath?: string }): Promise<ShellSession> {
  const client = await AdminClient.connect(adminSocketPath(opts.stateDir));
  if (client) {
    const ping = await client.request({ op: 'ping' });
    return {
      live: true,
      configPath: ping.configPath ?? '',
      async exec(req) {
        const r = await client.request({ op: 'exec', ...req });
        if (!r.ok) return { output: [r.message ?? 'admin API error'], error: true, cwd: req.cwd, prevCwd: req.prevCwd, exit: false };
        return { output: r.output ?? [], error: Boolean(r.error), cwd: r.cwd ?? req.cwd, prevCwd: r.prevCwd ?? req.prevCwd, exit: Boolean(r.exit),
          ...(typeof r.job === 'number' ? { job: r.job } : {}) };
      },
      async complete(req) {
        return (await client.request({ op: 'complete', ...req })).candidates ?? [];
      },
      watch: (job, frame) => client.watch(job, frame),
      close: () => client.close(),
    };
  }
  let configPath = opts.configPath ?? process.env.OUTPOST_CONFIG;
  if (!configPath) {
    try {
      configPath = (JSON.parse(await readFile(join(opts.stateDir, 'agent.json'), 'utf8')) as { configPath?: string }).configPath;
    } catch {
      // the agent never ran with this state dir
    }
  }
  configPath ??= DEFAULT_CONFIG;
  const engine = new ShellEngine(await openFileHost(configPath, opts.stateDir));
  return {
    live: false,
    configPath,
    exec: (req) => engine.exec(req),
    complete: async (req) => engine.complete(req),
    close: () => {},
  };
}
