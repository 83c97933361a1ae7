// The shell's `migrate` (docs/migration.md §From the shell): the agent asks its gateway over the control link
// to start a migration (shared/control-commands.ts AGENT_REQUEST_OPS), then mirrors the gateway's view of it
// into a 'migration' job of agent/jobs.ts, which the shell's progress follower shows like any long work.
import { UPLOAD_VOLUME_KEYS, type AgentRequestOp } from '../../shared/control-commands.js';
import { jobs } from '../jobs.js';
import type { Logger } from '../lib/log.js';

/** What the shell needs of the control link: absent when the agent runs without a gateway. */
export interface GatewayRequester {
  request(op: AgentRequestOp, args: Record<string, unknown>, timeoutMs?: number): Promise<unknown>;
}

const POLL_MS = 500;
/** The link may drop for a while (gateway restart); the job fails only after this long without an answer. */
const LOST_MS = 60_000;
const NUMERIC = new Set<string>(UPLOAD_VOLUME_KEYS.filter((k) => !['bucket', 'prefix', 'endpoint', 'region', 'force_path_style'].includes(k)));

interface View { state: string; phase: string; error?: string; pause_ms: number | null; progress?: { done: number; total: number } }

/** The REST body from the shell's key=value arguments (volume keys are the destination's bucket location). */
export function migrationArgs(target: string, lun: number, a: Readonly<Record<string, string | undefined>>): Record<string, unknown> {
  if (!a.to) throw new Error('migrate needs to=AGENT_ID (the destination agent, as the gateway names it: GET /v1/agents)');
  const out: Record<string, unknown> = { target, lun, to: a.to };
  if (a.from) out.from = a.from;
  if (a.to_portal) out.to_portal = a.to_portal;
  const volume: Record<string, unknown> = {};
  for (const k of UPLOAD_VOLUME_KEYS) {
    const v = a[k];
    if (v === undefined) continue;
    if (k === 'force_path_style') {
      if (v !== 'true' && v !== 'false') throw new Error('force_path_style must be true or false');
      volume[k] = v === 'true';
    } else if (NUMERIC.has(k)) {
      if (!/^\d+$/.test(v)) throw new Error(`${k} must be a non-negative integer`);
      volume[k] = Number(v);
    } else volume[k] = v;
  }
  if (Object.keys(volume).length) out.volume = volume;
  return out;
}

/** Starts the migration through the gateway; returns the shell's lines and follows it as a job on `subject`. */
export async function requestMigration(link: GatewayRequester | undefined, subject: string, body: Record<string, unknown>, log: Logger): Promise<string[]> {
  if (!link) throw new Error('this agent has no gateway link: migrations are sequenced by the gateway (start the agent with --gateway URL --agent-token TOKEN, or use POST /v1/migrations)');
  const r = (await link.request('migration.start', body, 30_000)) as { id: string; from: string; to: string };
  const job = jobs.start('migration', subject, { phase: 'starting', unit: 'bytes' });
  void (async () => {
    let lastAnswer = Date.now();
    for (;;) {
      await new Promise((res) => setTimeout(res, POLL_MS));
      let m: View;
      try {
        m = (await link.request('migration.get', { id: r.id }, 10_000)) as View;
        lastAnswer = Date.now();
      } catch (e) {
        if (Date.now() - lastAnswer > LOST_MS) return job.fail(`lost track of migration ${r.id}: ${(e as Error).message}`);
        continue;
      }
      if (m.progress) {
        if (job.snapshot().total !== m.progress.total) job.setTotal(m.progress.total);
        job.set(m.progress.done);
      }
      if (job.snapshot().phase !== m.phase) job.setPhase(m.phase);
      if (m.state === 'done') return job.finish();
      if (m.state === 'failed') return job.fail(m.error ?? 'migration failed');
    }
  })().catch((e: Error) => log.warn({ err: e.message }, 'migration follower stopped'));
  return [`Migration ${r.id} of LUN ${String(body.lun)} of ${String(body.target)} from agent ${r.from} to agent ${r.to} started.`];
}
