// The coordinator's hub on Workers: the agents' sockets live in the shard Durable Objects, which report
// each authenticated socket and its close here (kept in the coordinator's SQLite, so it survives the
// coordinator being evicted); pushes, sends and revocations go to the shards that hold the sockets.
import type { Hub, HubConnection } from '../hub.js';
import type { SqlDriver, SqlValue } from '../sql-store.js';

/** What the coordinator calls on a shard (gateway/workers/shard-object.ts). */
export interface ShardApi {
  push(agentIds: readonly string[] | null, version: number): Promise<void>;
  closeAgent(agentId: string, code: number, reason: string): Promise<void>;
  send(connId: string, frame: Uint8Array): Promise<void>;
}

/** One socket as a shard reports it: [connId, agentId, servedTargets]. */
export type PresenceRow = readonly [string, string, readonly string[]];

const SCHEMA = `CREATE TABLE IF NOT EXISTS shard_sockets (conn_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL, shard INTEGER NOT NULL, served_targets TEXT NOT NULL)`;

export class ShardedHub implements Hub {
  constructor(private readonly sql: SqlDriver, private readonly shard: (index: number) => ShardApi, private readonly logger: { warn(o: object, m?: string): void }) {
    sql.run(SCHEMA, []);
  }

  /** A shard's sockets changed; `replace` drops every socket it reported before (the shard restarted). */
  presence(shard: number, added: readonly PresenceRow[], removed: readonly string[], replace: boolean): void {
    const run = (): void => {
      if (replace) this.sql.run('DELETE FROM shard_sockets WHERE shard = ?', [shard]);
      for (const id of removed) this.sql.run('DELETE FROM shard_sockets WHERE conn_id = ?', [id]);
      for (const [connId, agentId, served] of added) {
        this.sql.run('INSERT INTO shard_sockets (conn_id, agent_id, shard, served_targets) VALUES (?, ?, ?, ?) ON CONFLICT (conn_id) DO UPDATE SET agent_id = excluded.agent_id, shard = excluded.shard, served_targets = excluded.served_targets', [connId, agentId, shard, JSON.stringify(served)]);
      }
    };
    if (this.sql.transaction) this.sql.transaction(run);
    else run();
  }

  private rows(): { connId: string; agentId: string; shard: number; served: string[] }[] {
    return this.sql.all('SELECT conn_id, agent_id, shard, served_targets FROM shard_sockets', []).map((r: Record<string, SqlValue>) => ({
      connId: String(r.conn_id), agentId: String(r.agent_id), shard: Number(r.shard), served: JSON.parse(String(r.served_targets)) as string[],
    }));
  }

  connections(): HubConnection[] {
    return this.rows().map((r) => ({
      connId: r.connId,
      agentId: r.agentId,
      servedTargets: r.served,
      send: (f: Uint8Array) => void this.shard(r.shard).send(r.connId, f).catch((e: Error) => this.logger.warn({ agent_id: r.agentId, err: e.message }, 'send through shard failed')),
    }));
  }

  closeAgent(agentId: string, code: number, reason: string): void {
    // every shard that holds a socket of it; a socket still saying hello is closed by its shard's own check
    const shards = new Set(this.rows().filter((r) => r.agentId === agentId).map((r) => r.shard));
    for (const s of shards) void this.shard(s).closeAgent(agentId, code, reason).catch((e: Error) => this.logger.warn({ agent_id: agentId, err: e.message }, 'revocation through shard failed'));
  }

  fanOut(agentIds: readonly string[] | undefined, version: number): void {
    const want = agentIds && new Set(agentIds);
    const perShard = new Map<number, Set<string>>();
    for (const r of this.rows()) {
      if (want && !want.has(r.agentId)) continue;
      let s = perShard.get(r.shard);
      if (!s) perShard.set(r.shard, (s = new Set()));
      s.add(r.agentId);
    }
    for (const [index, ids] of perShard) {
      void this.shard(index).push(want ? [...ids] : null, version).catch((e: Error) => this.logger.warn({ shard: index, version, err: e.message }, 'push through shard failed'));
    }
  }
}
