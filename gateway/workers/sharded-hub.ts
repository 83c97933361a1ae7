// The coordinator's hub on Workers: the agents' sockets live in the shard Durable Objects, which report
// each authenticated socket and its close here; pushes, sends and revocations go to the shards that
// hold the sockets.
import type { Hub, HubConnection } from '../hub.js';

/** What the coordinator calls on a shard (gateway/workers/shard-object.ts). */
export interface ShardApi {
  push(agentIds: readonly string[] | null, version: number): Promise<void>;
  closeAgent(agentId: string, code: number, reason: string): Promise<void>;
  send(connId: string, frame: Uint8Array): Promise<void>;
  /** Reports every socket the shard holds (replacing what it reported before). */
  relist(): Promise<void>;
}

/** One socket as a shard reports it: [connId, agentId, servedTargets]. */
export type PresenceRow = readonly [string, string, readonly string[]];

interface Listed { readonly agentId: string; readonly shard: number; readonly served: readonly string[] }

export class ShardedHub implements Hub {
  // In memory, not in the coordinator's SQLite: a storage write holds every reply of the object until it
  // is committed, so listing each connecting socket there made admissions wait on one another (a
  // 2,000-agent connect stalled in workerd). A restarted coordinator asks the shards to list again.
  private readonly listed = new Map<string, Listed>();

  constructor(private readonly shard: (index: number) => ShardApi, private readonly logger: { warn(o: object, m?: string): void }) {}

  /**
   * A shard's sockets changed; `replace` drops every socket it reported before (the shard restarted, or
   * this object did), except those in `keep`: sockets whose admission was in flight when it listed them.
   */
  presence(shard: number, added: readonly PresenceRow[], removed: readonly string[], replace: boolean, keep: readonly string[] = []): void {
    if (replace) {
      const kept = new Set(keep);
      for (const [id, l] of this.listed) if (l.shard === shard && !kept.has(id)) this.listed.delete(id);
    }
    for (const id of removed) this.listed.delete(id);
    for (const [connId, agentId, served] of added) this.listed.set(connId, { agentId, shard, served });
  }

  private rows(): { connId: string; agentId: string; shard: number; served: readonly string[] }[] {
    return [...this.listed].map(([connId, l]) => ({ connId, ...l }));
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
