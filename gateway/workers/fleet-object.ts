// Workers adapter, coordinator side: one Durable Object per fleet runs the gateway app with SQLite storage
// (ctx.storage.sql), the policy's one home. The agents' sockets are in the shards (shard-object.ts), which
// call in here for the store (storeCall), their sockets (presence) and the dashboard's figures (metrics).
import { DurableObject } from 'cloudflare:workers';
import { createApp } from '../app.js';
import { AgentCommands } from '../agent-commands.js';
import type { ResultMessage } from '../../shared/control-commands.js';
import { secretKeyProblem } from '../crypto.js';
import { Fleet } from '../fleet.js';
import type { GatewayDeps } from '../hub.js';
import { gatewayMetrics } from '../metrics.js';
import { scryptKdf } from '../node/scrypt.js';
import { SqlStore, type SqlDriver, type SqlValue } from '../sql-store.js';
import type { AgentPatch, Store } from '../store.js';
import { envLogger, type Env } from './env.js';
import { SHARD_STORE_METHODS, type Admitted } from './remote-store.js';
import { ShardedHub, type PresenceRow } from './sharded-hub.js';
import { watchStore, type LiveFeed } from '../ui/live.js';
import { acceptLive, isLiveSocket, isLiveUpgrade, liveFeed } from './live-sockets.js';

export type { Env } from './env.js';

/** A shard's figure for the dashboard: a push, an ack or an event, replayed on the coordinator's metrics. */
export type ShardMetric =
  | readonly ['pushed', string, number]
  | readonly ['acked', string, number]
  | readonly ['event', Parameters<ReturnType<typeof gatewayMetrics>['event']>[0], string, string | undefined];

export const shardCount = (env: Env): number => {
  const n = Number(env.OUTPOST_SHARDS ?? 8);
  return Number.isInteger(n) && n >= 1 && n <= 256 ? n : 8;
};

export class FleetObject extends DurableObject<Env> {
  private readonly app: ReturnType<typeof createApp> | undefined;
  private readonly deps: GatewayDeps | undefined;
  private readonly hub: ShardedHub | undefined;
  private readonly misconfigured: string | undefined;
  private readonly live: LiveFeed | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const consoleLogger = envLogger(env);
    // Workers have no start to fail: a missing or bad secret makes every request answer 500 with the reason.
    const keyProblem = env.OUTPOST_SECRET_KEY ? secretKeyProblem(env.OUTPOST_SECRET_KEY) : undefined;
    if (!env.OUTPOST_ADMIN_TOKEN || !env.OUTPOST_SECRET_KEY || keyProblem) {
      this.misconfigured = keyProblem ? `gateway misconfigured: ${keyProblem}` : 'gateway misconfigured: OUTPOST_ADMIN_TOKEN and OUTPOST_SECRET_KEY must be set';
      consoleLogger.error({}, this.misconfigured);
      return;
    }
    const sql = ctx.storage.sql;
    const driver: SqlDriver = {
      all: (q, p) => sql.exec<Record<string, SqlValue>>(q, ...p).toArray(),
      run: (q, p) => void sql.exec(q, ...p),
      transaction: (fn) => ctx.storage.transactionSync(fn),
    };
    const fleet = env.OUTPOST_FLEET ?? 'default';
    const shard = (i: number) => env.SHARD.get(env.SHARD.idFromName(`${fleet}#${i}`));
    this.hub = new ShardedHub(shard, consoleLogger);
    // this object may have been evicted while the shards kept their sockets: they list them again
    for (let i = 0; i < shardCount(env); i++) void shard(i).relist().catch((e: Error) => consoleLogger.warn({ shard: i, err: e.message }, 'shard relist failed'));
    // the dashboards' sockets are here (gateway/workers/live-sockets.ts): told of every write to the fleet's store
    this.live = liveFeed(ctx);
    this.deps = { store: watchStore(new SqlStore(driver), this.live), hub: this.hub, secretKey: env.OUTPOST_SECRET_KEY, kdf: scryptKdf, adminToken: env.OUTPOST_ADMIN_TOKEN, logger: consoleLogger };
    this.app = createApp(this.deps);
  }

  override async fetch(req: Request): Promise<Response> {
    if (!this.app) return Response.json({ error: this.misconfigured ?? 'gateway misconfigured' }, { status: 500 });
    if (isLiveUpgrade(req)) return acceptLive(this.ctx, req, this.deps!.adminToken);
    return this.app.fetch(req);
  }

  // The dashboards' live sockets: pings are auto-responses; anything else is not a dashboard.
  override async webSocketMessage(ws: WebSocket): Promise<void> {
    if (isLiveSocket(this.ctx, ws)) ws.close(1003, 'the live channel takes only pings');
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  // RPC from the shards --------------------------------------------------------------------------

  async storeCall(method: string, args: unknown[]): Promise<unknown> {
    if (!this.deps) throw new Error(this.misconfigured ?? 'gateway misconfigured');
    if (!SHARD_STORE_METHODS.has(method)) throw new Error(`the store call ${method} is not available to shards`);
    if (method === 'updateAgents') {
      // The shards' report batches are merged into this object's own, one commit per window for the whole
      // fleet: every storage commit here holds all of this object's replies (its output gate) until it is
      // durable, and a commit per shard per 100 ms held the admissions of connecting agents behind them.
      const fleet = Fleet.for(this.deps);
      for (const [id, patch] of args[0] as Map<string, AgentPatch>) fleet.record(id, patch);
      return;
    }
    const store = this.deps.store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    return store[method]!(...args) as ReturnType<NonNullable<Store[keyof Store]>>;
  }

  /** A socket with an agent token at a shard: its agent (and assignments), listed here as connected. */
  async admit(shard: number, connId: string, tokenHash: string): Promise<Admitted | undefined> {
    if (!this.deps || !this.hub) return undefined;
    const agent = await this.deps.store.findAgentByTokenHash(tokenHash);
    if (!agent) return undefined;
    this.hub.presence(shard, [[connId, agent.id, []]], [], false);
    return { agent, assigned: await this.deps.store.assignedTargets(agent.id) };
  }

  async presence(shard: number, added: PresenceRow[], removed: string[], replace: boolean, keep: string[] = []): Promise<void> {
    this.hub?.presence(shard, added, removed, replace, keep);
  }

  /** A command's result from the agent's socket at a shard (the command was sent from here). */
  async commandResult(connId: string, msg: ResultMessage): Promise<void> {
    if (this.deps) AgentCommands.for(this.deps).answered(connId, msg);
  }

  /** A shard's socket closed: what was asked over it will not be answered. */
  async commandLost(connId: string): Promise<void> {
    if (this.deps) AgentCommands.for(this.deps).lost(connId);
  }

  async metrics(batch: ShardMetric[]): Promise<void> {
    if (!this.deps) return;
    const metrics = gatewayMetrics(this.deps);
    const fleet = Fleet.for(this.deps);
    for (const m of batch) {
      if (m[0] === 'pushed') {
        metrics.pushed(m[1], m[2]);
        fleet.sentElsewhere(m[2]);
      } else if (m[0] === 'acked') metrics.acked(m[1], m[2]);
      else metrics.event(m[1], m[2], m[3]);
    }
    // events arrive apart from the reports that caused them: the dashboards re-read them too
    if (batch.some((m) => m[0] !== 'pushed')) this.live?.changed('agents');
  }
}
