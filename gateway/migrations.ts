// Live migration of an object LUN from agent A to agent B (docs/migration.md), sequenced by the gateway over
// the control commands: B opens a standby path, the initiator logs in to it, A drains its dirty data while
// serving, A's port goes transitioning, A hands the writer lease over, B takes it over and goes
// active/optimized, A goes unavailable. Any failure rolls back to A serving as before.
// REST: POST /v1/migrations {target, lun, from, to} → 202 {id}; GET /v1/migrations/{id}.
import type { Hono } from 'hono';
import { UPLOAD_VOLUME_KEYS, checkRequestArgs, type AgentRequestMessage, type ReplyMessage } from '../shared/control-commands.js';
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
  /**
   * A fileio/block LUN only: where its new object volume goes (the destination site's bucket, prefix, endpoint…;
   * UPLOAD_VOLUME_KEYS). A uploads the LUN there while serving it, then the cut-over is the object one.
   */
  volume?: Record<string, unknown>;
}

/** A fileio/block LUN's upload, as A's job reports it. */
export interface UploadProgress { done: number; total: number; unit: string; rate: number; eta_s: number | null }

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
  /** A fileio/block LUN's upload into the new object volume (absent for an object LUN). */
  progress?: UploadProgress;
}

const FIELDS = ['target', 'lun', 'from', 'to', 'to_portal', 'login_timeout_ms', 'volume'];
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
  if (b.volume !== undefined) {
    const v = b.volume;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('volume must be an object {bucket, prefix, endpoint, …}');
    const extra = Object.keys(v).filter((k) => !(UPLOAD_VOLUME_KEYS as readonly string[]).includes(k));
    if (extra.length) throw badRequest(`volume: unknown field ${extra.map((k) => JSON.stringify(k)).join(', ')} (known: ${UPLOAD_VOLUME_KEYS.join(', ')})`);
    const r = v as Record<string, unknown>;
    if (typeof r.bucket !== 'string' || !r.bucket) throw badRequest('volume.bucket must be the destination bucket');
    for (const k of ['prefix', 'endpoint', 'region'] as const) if (r[k] !== undefined && typeof r[k] !== 'string') throw badRequest(`volume.${k} must be a string`);
    if (r.force_path_style !== undefined && typeof r.force_path_style !== 'boolean') throw badRequest('volume.force_path_style must be true or false');
    for (const k of Object.keys(r)) {
      if (['bucket', 'prefix', 'endpoint', 'region', 'force_path_style'].includes(k)) continue;
      if (typeof r[k] !== 'number' || !Number.isSafeInteger(r[k]) || (r[k] as number) < 0) throw badRequest(`volume.${k} must be a non-negative integer`);
    }
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

/**
 * The migrations of one gateway: run in this process, each record also kept in the store, so GET answers
 * after a restart; one a restart interrupted is reported failed with the phase it was in.
 */
export class Migrations {
  private readonly list = new Map<string, MigrationView>();
  private readonly cmd: AgentCommands;
  /** One migration per target at a time: two would race for the writer lease. */
  private readonly busy = new Set<string>();
  private recovered: Promise<void> | undefined;

  constructor(private readonly deps: GatewayDeps) {
    this.cmd = AgentCommands.for(deps);
  }

  /** Records left running by an earlier process: nothing drives them any more. */
  private recover(): Promise<void> {
    this.recovered ??= (async () => {
      for (const text of (await this.deps.store.runningMigrations?.()) ?? []) {
        const m = JSON.parse(text) as MigrationView;
        if (this.list.has(m.id)) continue;
        m.state = 'failed';
        m.error = `the gateway restarted while the migration was at "${m.phase}"; it was not completed. The source keeps the LUN unless the hand-over had ended`
          + ` (check its ALUA state and lease role; a port left transitioning is set back with PUT /v1/agents/${m.from}/targets/${m.target}/luns/${m.lun}/alua)`;
        m.phase = 'interrupted by a gateway restart';
        m.finished_at = now();
        await this.deps.store.putMigration?.(m.id, JSON.stringify(m), false);
      }
    })().catch((e: Error) => this.deps.logger.warn({ err: e.message }, 'interrupted migrations not recovered'));
    return this.recovered;
  }

  /** Writes the record through (in call order: the stores run each call's statement before yielding). */
  private save(m: MigrationView): void {
    void this.deps.store.putMigration?.(m.id, JSON.stringify(m), m.state === 'running')
      .catch((e: Error) => this.deps.logger.warn({ migration: m.id, err: e.message }, 'migration record not saved'));
  }

  private async load(id: string): Promise<MigrationView | undefined> {
    await this.recover();
    const m = this.list.get(id);
    if (m) return m;
    const text = await this.deps.store.getMigration?.(id);
    return text ? (JSON.parse(text) as MigrationView) : undefined;
  }

  async get(id: string): Promise<MigrationView | undefined> {
    const m = await this.load(id);
    return m && { ...m };
  }

  async start(req: MigrationRequest): Promise<MigrationView> {
    const { store } = this.deps;
    for (const id of [req.from, req.to]) if (!(await store.getAgent(id))) throw notFound(`no agent ${id}`);
    const key = req.target.toLowerCase();
    if (this.busy.has(key)) throw new ApiError(409, `a migration of ${req.target} is already running`);
    const m: MigrationView = { id: crypto.randomUUID(), target: req.target, lun: req.lun, from: req.from, to: req.to, state: 'running', phase: 'starting',
      pause_ms: null, uploaded_bytes: null, put_count: null, started_at: now(), finished_at: null, source_exported: true };
    await this.recover();
    this.list.set(m.id, m);
    this.save(m);
    this.busy.add(key);
    void this.run(m, req).finally(() => this.busy.delete(key));
    return { ...m };
  }

  private async run(m: MigrationView, req: MigrationRequest): Promise<void> {
    const log = this.deps.logger;
    const undo: Array<() => Promise<unknown>> = [];
    const step = (phase: string) => {
      m.phase = phase;
      this.save(m);
      log.info({ migration: m.id, target: m.target, phase }, 'migration');
    };
    type Op = Parameters<AgentCommands['send']>[1];
    const A = <T = unknown>(op: Op, args: Record<string, unknown>, ms?: number) => this.cmd.send<T>(req.from, op, args, ms);
    const B = <T = unknown>(op: Op, args: Record<string, unknown>, ms?: number) => this.cmd.send<T>(req.to, op, args, ms);
    const tl = { target: req.target, lun: req.lun };
    try {
      step('describing the LUN on the source');
      const d = await A<Described>('lun.describe', tl);
      const upload = d.plugin !== 'object';
      const what = `LUN ${req.lun} of ${req.target} on agent ${req.from} is a ${d.plugin} LUN`;
      if (upload && !req.volume) throw new Error(`${what}; only object LUNs migrate live (give volume {bucket, prefix, endpoint} to upload a fileio or block LUN into an object volume at the destination)`);
      if (upload && d.plugin !== 'fileio' && d.plugin !== 'block') throw new Error(`${what}; only object, fileio and block LUNs migrate`);
      if (!upload && req.volume) throw new Error(`${what}: it migrates within its own bucket; volume is for fileio and block LUNs only`);
      const src = d.tpgs[0]!;
      await B('ping', {}).catch((e: Error) => { throw new Error(`destination agent ${req.to} unreachable: ${e.message}`); });
      let volume = d.volume;
      let before: Figures = { bytes_uploaded: 0, put_count: 0, dirty_bytes: 0 };
      if (upload) {
        step('creating the object volume at the destination bucket');
        const u = await A<{ volume: Record<string, unknown>; progress: UploadProgress }>('upload.start', { ...tl, volume: req.volume! }, 60_000);
        undo.push(() => A('upload.abort', tl, 90_000));
        volume = { ...u.volume, attributes: d.volume.attributes, product_id: d.volume.product_id };
        m.progress = u.progress;
      } else {
        before = await A<Figures>('dirty.report', tl);
      }

      step('opening the standby path on the destination');
      // B's own TPG and group: distinct relative port id and port group from every one A uses
      const tpg = Math.max(...d.tpgs.map((t) => t.tag), ...d.tpgs.map((t) => t.relative_port_id)) + 1;
      const groupId = Math.max(...d.tpgs.map((t) => t.group_id)) + 1;
      const opened = await B<{ portal: string }>('standby.open', { ...tl, tpg, group_id: groupId, ...(req.to_portal ? { portal: req.to_portal } : {}),
        backstore: { ...volume, tpg_attributes: d.tpg_attributes, tpg_parameters: d.tpg_parameters } }, 60_000);
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

      step(upload ? 'uploading the LUN into the destination volume while the source serves' : 'uploading dirty data on the source while it serves');
      // each round waits up to 10 s on A; three rounds without progress mean A cannot reach the bucket. An
      // upload has no round limit (a big LUN takes long) but the same stall rule.
      let best = Infinity;
      for (let round = 0, stalled = 0; ; round++) {
        const f = await A<Figures & { last_error: string | null; progress?: UploadProgress }>('flush', tl, 30_000);
        if (f.progress) m.progress = f.progress;
        if (f.dirty_bytes <= CUTOVER_DIRTY_BYTES || (!upload && round >= MAX_FLUSH_ROUNDS)) break;
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
      if (m.progress) m.progress = { ...m.progress, done: m.progress.total, eta_s: 0 };
      m.state = 'done';
      step('done');
    } catch (e) {
      m.error = (e as Error).message;
      log.warn({ migration: m.id, err: m.error }, 'migration failed; rolling back');
      // still 'running' until the rollback has run: 'failed' promises that the source serves again
      step(`rolling back: ${m.error}`);
      for (const u of undo.reverse()) {
        try {
          await u();
        } catch (err) {
          m.error += `; rollback step failed: ${(err as Error).message}`;
        }
      }
      m.state = 'failed';
      step('rolled back: the source serves as before');
    } finally {
      m.finished_at = now();
      this.save(m);
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
    const m = await this.load(id);
    if (!m) throw notFound(`no migration ${id}`);
    if (m.state !== 'done') throw new ApiError(409, `migration ${id} is ${m.state}; only a finished one releases its source`);
    if (m.source_exported) {
      await this.cmd.send(m.from, 'unexport', { target: m.target, lun: m.lun }, 60_000);
      m.source_exported = false;
      this.save(m);
    }
    return { ...m };
  }
}

const registry = new WeakMap<GatewayDeps, Migrations>();

function migrationsFor(deps: GatewayDeps): Migrations {
  let m = registry.get(deps);
  if (!m) registry.set(deps, (m = new Migrations(deps)));
  return m;
}

/**
 * An agent's request over its control socket (its shell's `migrate`): it may start a migration it takes part
 * in (from or to) of a target assigned to the source, and follow one it takes part in — never act for others.
 */
export async function answerAgentRequest(deps: GatewayDeps, agentId: string, msg: AgentRequestMessage): Promise<ReplyMessage> {
  try {
    checkRequestArgs(msg.op, msg.args);
    const mg = migrationsFor(deps);
    const a = msg.args as Record<string, unknown>;
    if (msg.op === 'migration.get') {
      const m = await mg.get(a.id as string);
      if (!m || (m.from !== agentId && m.to !== agentId)) throw notFound(`no migration ${String(a.id)} of this agent`);
      return { type: 'reply', id: msg.id, ok: true, result: m };
    }
    const req = parseRequest({ ...a, from: a.from ?? agentId });
    if (req.from !== agentId && req.to !== agentId) throw badRequest('an agent may start only a migration from or to itself');
    // The source moves its own LUN away. A destination pulling a target would receive its ACL/CHAP policy:
    // only when the admin has assigned the target to it already (a DR standby), so no new secret flows to it.
    if (req.from !== agentId && !(await deps.store.assignedTargets(agentId)).some((t) => t.toLowerCase() === req.target.toLowerCase())) {
      throw badRequest(`target ${req.target} is not assigned to agent ${agentId} on the gateway: start the migration on the source agent, or through POST /v1/migrations`);
    }
    const m = await mg.start(req);
    return { type: 'reply', id: msg.id, ok: true, result: { id: m.id, state: m.state, from: m.from, to: m.to } };
  } catch (e) {
    return { type: 'reply', id: msg.id, ok: false, error: (e as Error).message };
  }
}

export function mountMigrationRoutes(app: Hono, deps: GatewayDeps): void {
  const mg = migrationsFor(deps);
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
  app.get('/v1/migrations/:id', async (c) => {
    const m = await mg.get(c.req.param('id'));
    if (!m) throw notFound(`no migration ${c.req.param('id')}`);
    return c.json(m);
  });
  app.post('/v1/migrations/:id/finish', async (c) => c.json(await mg.finish(c.req.param('id'))));
}
