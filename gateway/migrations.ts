// Live migration of an object LUN from agent A to agent B (docs/migration.md), sequenced by the gateway over
// the control commands: B opens a standby path, the initiator logs in to it, A drains its dirty data while
// serving, A's port goes transitioning, A hands the writer lease over, B takes it over and goes
// active/optimized, A goes unavailable. Any failure rolls back to A serving as before.
// REST: POST /v1/migrations {target, lun, from, to} → 202 {id}; GET /v1/migrations/{id}.
import type { Hono } from 'hono';
import { AgentCommands } from './agent-commands.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { Fleet } from './fleet.js';
import type { GatewayDeps } from './hub.js';
import { checkIscsiName } from './validate.js';

export interface MigrationRequest {
  target: string;
  lun: number;
  from: string;
  to: string;
  /** B's portal for its standby path (IPv4:PORT); default: a portal B already listens on. */
  to_portal?: string;
  /** How long the initiator has to log in to B's path (default 60 000 ms). */
  login_timeout_ms?: number;
}

export interface MigrationView {
  id: string;
  target: string;
  lun: number;
  from: string;
  to: string;
  state: 'running' | 'done' | 'failed';
  phase: string;
  /** A's port transitioning → B's port active/optimized (B completes writes from then on), in ms. */
  pause_ms: number | null;
  error?: string;
  /** What A uploaded from the migration's start to the hand-over (dirty data, manifests, lease). */
  uploaded_bytes: number | null;
  put_count: number | null;
  started_at: string;
  finished_at: string | null;
  /** Whether A still exports the LUN (unavailable) after the cut-over. */
  source_exported: boolean;
}

const FIELDS = ['target', 'lun', 'from', 'to', 'to_portal', 'login_timeout_ms'];
/** A's dirty data small enough to upload within the pause budget (5 s) on a slow link. */
const CUTOVER_DIRTY_BYTES = 8 * 1024 * 1024;
const MAX_FLUSH_ROUNDS = 60;

function parseRequest(v: unknown): MigrationRequest {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('body must be an object {target, lun, from, to}');
  const b = v as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !FIELDS.includes(k));
  if (unknown.length) throw badRequest(`unknown field ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${FIELDS.join(', ')})`);
  if (typeof b.target !== 'string') throw badRequest('target must be a target IQN');
  checkIscsiName(b.target, 'target IQN');
  if (typeof b.lun !== 'number' || !Number.isInteger(b.lun) || b.lun < 0 || b.lun > 65535) throw badRequest('lun must be an integer in 0..65535');
  if (typeof b.from !== 'string' || typeof b.to !== 'string' || !b.from || !b.to) throw badRequest('from and to must be agent ids');
  if (b.from === b.to) throw badRequest('from and to are the same agent');
  if (b.to_portal !== undefined && (typeof b.to_portal !== 'string' || !/^\d+\.\d+\.\d+\.\d+:\d{1,5}$/.test(b.to_portal))) throw badRequest('to_portal must be IPv4:PORT');
  if (b.login_timeout_ms !== undefined && (typeof b.login_timeout_ms !== 'number' || !Number.isInteger(b.login_timeout_ms) || b.login_timeout_ms < 1000 || b.login_timeout_ms > 3_600_000)) {
    throw badRequest('login_timeout_ms must be an integer in 1000..3600000');
  }
  return b as unknown as MigrationRequest;
}

interface Described {
  plugin: string;
  volume: Record<string, unknown>;
  tpgs: { tag: number; relative_port_id: number; group_id: number; state: number; portals: string[] }[];
  tpg_attributes: Record<string, unknown>;
  tpg_parameters: Record<string, unknown>;
}
interface Figures { bytes_uploaded: number; put_count: number; dirty_bytes: number }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => new Date().toISOString();

/** The migrations of one gateway process (kept in memory: a restarted gateway forgets finished ones). */
export class Migrations {
  private readonly list = new Map<string, MigrationView>();
  private readonly cmd: AgentCommands;
  /** One migration per target at a time: two would race for the writer lease. */
  private readonly busy = new Set<string>();

  constructor(private readonly deps: GatewayDeps) {
    this.cmd = AgentCommands.for(deps);
  }

  get(id: string): MigrationView | undefined {
    const m = this.list.get(id);
    return m && { ...m };
  }

  async start(req: MigrationRequest): Promise<MigrationView> {
    const { store } = this.deps;
    for (const id of [req.from, req.to]) if (!(await store.getAgent(id))) throw notFound(`no agent ${id}`);
    const key = req.target.toLowerCase();
    if (this.busy.has(key)) throw new ApiError(409, `a migration of ${req.target} is already running`);
    const m: MigrationView = { id: crypto.randomUUID(), target: req.target, lun: req.lun, from: req.from, to: req.to, state: 'running', phase: 'starting',
      pause_ms: null, uploaded_bytes: null, put_count: null, started_at: now(), finished_at: null, source_exported: true };
    this.list.set(m.id, m);
    this.busy.add(key);
    void this.run(m, req).finally(() => this.busy.delete(key));
    return { ...m };
  }

  private async run(m: MigrationView, req: MigrationRequest): Promise<void> {
    const log = this.deps.logger;
    const undo: Array<() => Promise<unknown>> = [];
    const step = (phase: string) => {
      m.phase = phase;
      log.info({ migration: m.id, target: m.target, phase }, 'migration');
    };
    type Op = Parameters<AgentCommands['send']>[1];
    const A = <T = unknown>(op: Op, args: Record<string, unknown>, ms?: number) => this.cmd.send<T>(req.from, op, args, ms);
    const B = <T = unknown>(op: Op, args: Record<string, unknown>, ms?: number) => this.cmd.send<T>(req.to, op, args, ms);
    const tl = { target: req.target, lun: req.lun };
    try {
      step('describing the LUN on the source');
      const d = await A<Described>('lun.describe', tl);
      if (d.plugin !== 'object') throw new Error(`LUN ${req.lun} of ${req.target} on agent ${req.from} is a ${d.plugin} LUN; only object LUNs migrate live`);
      const src = d.tpgs[0]!;
      await B('ping', {}).catch((e: Error) => { throw new Error(`destination agent ${req.to} unreachable: ${e.message}`); });
      const before = await A<Figures>('dirty.report', tl);

      step('opening the standby path on the destination');
      // B's own TPG and group: distinct relative port id and port group from every one A uses
      const tpg = Math.max(...d.tpgs.map((t) => t.tag), ...d.tpgs.map((t) => t.relative_port_id)) + 1;
      const groupId = Math.max(...d.tpgs.map((t) => t.group_id)) + 1;
      const opened = await B<{ portal: string }>('standby.open', { ...tl, tpg, group_id: groupId, ...(req.to_portal ? { portal: req.to_portal } : {}),
        backstore: { ...d.volume, tpg_attributes: d.tpg_attributes, tpg_parameters: d.tpg_parameters } }, 60_000);
      undo.push(() => B('unexport', { ...tl, tpg }, 60_000));
      await this.assign(req.to, req.target, undo);

      step(`waiting for the initiator to log in to ${opened.portal} (TPG ${tpg}) on the destination`);
      const loginBy = Date.now() + (req.login_timeout_ms ?? 60_000);
      for (;;) {
        const s = await B<{ sessions: number }>('sessions.count', { target: req.target, tpg });
        if (s.sessions > 0) break;
        if (Date.now() > loginBy) throw new Error(`the initiator did not log in to agent ${req.to}'s path (${opened.portal}, TPG ${tpg}) within ${req.login_timeout_ms ?? 60_000} ms`);
        await sleep(250);
      }

      step('uploading dirty data on the source while it serves');
      // each round waits up to 10 s on A; three rounds without progress mean A cannot reach the bucket
      let best = Infinity;
      for (let round = 0, stalled = 0; ; round++) {
        const f = await A<Figures & { last_error: string | null }>('flush', tl, 30_000);
        if (f.dirty_bytes <= CUTOVER_DIRTY_BYTES || round >= MAX_FLUSH_ROUNDS) break;
        stalled = f.dirty_bytes < best ? 0 : stalled + 1;
        best = Math.min(best, f.dirty_bytes);
        if (stalled >= 3) throw new Error(`the source cannot upload its dirty data (${f.dirty_bytes} bytes dirty, ${f.last_error ?? 'no progress'})`);
      }

      step('cut-over: source transitioning');
      undo.push(() => A('alua.set', { ...tl, state: 'active/optimized' }));
      await A('alua.set', { ...tl, state: 'transitioning' });
      const t0 = Date.now();
      step('cut-over: source hands the writer lease over');
      const h = await A<Figures & { pr: unknown; detached?: boolean }>('handover', tl, 90_000);
      m.uploaded_bytes = h.bytes_uploaded - before.bytes_uploaded;
      m.put_count = h.put_count - before.put_count;
      // from here the source no longer writes: a failed take-over must give it the lease back first
      undo.push(() => A('takeover', tl, 60_000));
      step('cut-over: destination takes the writer lease over');
      await B('takeover', { ...tl, pr: h.pr as Record<string, unknown>, from_tpg: src.tag }, 60_000);
      await B('alua.set', { ...tl, state: 'active/optimized' });
      m.pause_ms = Date.now() - t0;
      undo.length = 0; // B serves: nothing to roll back to any more
      // A closed its LUN to release the lease; it comes back as a reader whose port is unavailable, so the
      // initiator sees that path as such (not as a vanished LUN) until it drops it or finish removes it
      await A(h.detached ? 'reexport' : 'alua.set', { ...tl, state: 'unavailable' }, 60_000)
        .catch((e: Error) => {
          m.source_exported = !h.detached;
          log.warn({ migration: m.id, err: e.message }, 'source path not set unavailable');
        });
      m.state = 'done';
      step('done');
    } catch (e) {
      m.error = (e as Error).message;
      m.state = 'failed';
      log.warn({ migration: m.id, err: m.error }, 'migration failed; rolling back');
      for (const u of undo.reverse()) {
        try {
          await u();
        } catch (err) {
          m.error += `; rollback step failed: ${(err as Error).message}`;
        }
      }
      step('rolled back: the source serves as before');
    } finally {
      m.finished_at = now();
    }
  }

  /** Policy follows the IQN: B must receive the ACLs/CHAP of the target (and lose them again on rollback). */
  private async assign(agentId: string, target: string, undo: Array<() => Promise<unknown>>): Promise<void> {
    const { store } = this.deps;
    const fleet = Fleet.for(this.deps);
    const version = await fleet.serializeWrite(() => store.assign(agentId, target));
    if (version === undefined) return; // already assigned
    fleet.push([agentId], version);
    undo.push(async () => {
      const v = await store.unassign(agentId, target);
      if (v !== undefined) fleet.push([agentId], v);
    });
  }

  /** After the cut-over: A stops exporting the LUN (its path is unavailable; the initiator may drop it first). */
  async finish(id: string): Promise<MigrationView> {
    const m = this.list.get(id);
    if (!m) throw notFound(`no migration ${id}`);
    if (m.state !== 'done') throw new ApiError(409, `migration ${id} is ${m.state}; only a finished one releases its source`);
    if (m.source_exported) {
      await this.cmd.send(m.from, 'unexport', { target: m.target, lun: m.lun }, 60_000);
      m.source_exported = false;
    }
    return { ...m };
  }
}

const registry = new WeakMap<GatewayDeps, Migrations>();

export function mountMigrationRoutes(app: Hono, deps: GatewayDeps): void {
  let migrations = registry.get(deps);
  if (!migrations) registry.set(deps, (migrations = new Migrations(deps)));
  const mg = migrations;
  app.post('/v1/migrations', async (c) => {
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      throw badRequest('request body is not valid JSON');
    }
    const m = await mg.start(parseRequest(body));
    return c.json({ id: m.id, state: m.state }, 202);
  });
  app.get('/v1/migrations/:id', (c) => {
    const m = mg.get(c.req.param('id'));
    if (!m) throw notFound(`no migration ${c.req.param('id')}`);
    return c.json(m);
  });
  app.post('/v1/migrations/:id/finish', async (c) => c.json(await mg.finish(c.req.param('id'))));
}
