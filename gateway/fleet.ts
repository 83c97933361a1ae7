// Fleet policy fan-out: a REST change answers once committed; pushes run in the background in rounds
// (one fleet read per round, one frame per target set, sends in bounded slices), per socket in order,
// and flow-controlled by acks: a socket gets its next snapshot only when it acked the previous one (or
// after ACK_WAIT_MS), and then the newest — so a burst of changes costs each agent a few snapshots.
import type { PolicySnapshot } from '../shared/policy.js';
import { SecretBox, fromHex } from './crypto.js';
import { FleetContent, SnapshotCache, type PendingChange } from './fleet-snapshots.js';
import type { GatewayDeps, HubConnection } from './hub.js';
import { gatewayMetrics } from './metrics.js';
import type { AgentPatch } from './store.js';

export { DISCOVERY_CONTEXT, aclContext, type PendingChange } from './fleet-snapshots.js';

export interface PushError { readonly agent_id: string; readonly error: string }
/** What a REST change answers: the connected agents it concerns (the fan-out itself runs after). */
export interface PushResult { readonly pushed_to: number; readonly push_errors?: PushError[] }

/** Sends per slice before yielding to the event loop, so REST requests and acks interleave with a fan-out. */
const SEND_SLICE = 500;
/** An agent that has not acked its last snapshot by then gets the newest one anyway. */
const ACK_WAIT_MS = 10_000;
/**
 * Agents' reports (acks, statuses, hellos) are written together over this window: at 10,000 agents a
 * push brings 10,000 acks, and a commit per event-loop turn was the gateway's largest CPU cost in a burst.
 * REST reads flush first, so no listing shows stale state; the reports are not fsync'd either way.
 */
const REPORT_BATCH_MS = 100;
/**
 * A fan-out waits while further policy writes are queued (they supersede its version), but no longer
 * than this, so a steady stream of writes cannot hold every push back.
 */
const COALESCE_MAX_MS = 500;

/** One socket's push state. */
interface SocketState {
  readonly conn: HubConnection;
  lastSent: number;
  /** Version sent and not yet acked or nacked, with when it was sent. */
  inFlight: number | undefined;
  sentAt: number;
  /** A round skipped it while a snapshot was in flight: the ack triggers its push. */
  owed: boolean;
}

/** Fan-out progress of the newest version pushed, for GET /v1/fleet. */
export interface FanoutProgress {
  version: number;
  /** Snapshots of this version sent, and sends of it that failed. */
  sent: number;
  failed: number;
  started_at: string;
  last_sent_at: string | null;
}

/** Running totals of the fan-out's work since start, for GET /v1/fleet (what a burst cost, not only how long). */
export interface FanoutWork {
  /** Snapshot frames encoded (one per version per target set) and snapshots sent (one per socket). */
  frames_built: number;
  snapshots_sent: number;
  /** Store transactions that wrote agents' reports (acks, statuses, hellos), and the rows they wrote. */
  report_commits: number;
  report_rows: number;
}

const fleets = new WeakMap<GatewayDeps, Fleet>();
// after the pending I/O callbacks (Node's setImmediate), so one turn's acks share a batch; Workers have setTimeout
const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
const nextTick = (): Promise<void> => new Promise((r) => (immediate ? immediate(r) : setTimeout(r, 0)));

export class Fleet {
  private boxPromise: Promise<SecretBox> | undefined;
  private readonly cache: SnapshotCache;
  private readonly sockets = new Map<string, SocketState>();
  private writes: Promise<unknown> = Promise.resolve();
  /** Policy writes queued or running in serializeWrite. */
  private writesQueued = 0;
  private pendingAll = false;
  private readonly pendingAgents = new Set<string>();
  /** Sockets owed a push (hello, or an ack after a skipped push): known here, so no fleet-wide listing is needed. */
  private readonly pendingSockets = new Map<string, HubConnection>();
  private rounds: Promise<void> | undefined;
  private progress: FanoutProgress | undefined;
  private readonly records = new Map<string, AgentPatch>();
  private flushing: Promise<void> | undefined;
  private readonly work: FanoutWork = { frames_built: 0, snapshots_sent: 0, report_commits: 0, report_rows: 0 };

  private constructor(readonly deps: GatewayDeps) {
    this.cache = new SnapshotCache(deps.store, () => this.box(), () => this.work.frames_built++);
  }

  /** The one Fleet of a gateway (the REST app and the control service must share push state). */
  static for(deps: GatewayDeps): Fleet {
    let f = fleets.get(deps);
    if (!f) fleets.set(deps, (f = new Fleet(deps)));
    return f;
  }

  box(): Promise<SecretBox> {
    this.boxPromise ??= this.deps.store.kdfSalt().then((salt) => SecretBox.fromSecret(this.deps.secretKey, fromHex(salt), this.deps.kdf));
    this.boxPromise.catch(() => (this.boxPromise = undefined)); // a failed derivation is retried, not cached
    return this.boxPromise;
  }

  async snapshotFor(agentId: string): Promise<PolicySnapshot> {
    const content = await this.cache.read([], [agentId]);
    return content.snapshot(content.targetsOf(agentId));
  }

  /** Refuses (with the reason) a change that would make an affected agent's snapshot exceed one frame. */
  wouldOverflow(agentIds: readonly string[], change: PendingChange): Promise<string | undefined> {
    return this.cache.wouldOverflow(agentIds, change);
  }

  /**
   * Runs policy writes one at a time, so the frame-size check and the write it admits see the same
   * content (two writes that each fit cannot together overflow a snapshot). Pushes run outside it.
   */
  serializeWrite<T>(fn: () => Promise<T>): Promise<T> {
    this.writesQueued++;
    const p = this.writes.then(fn, fn).finally(() => this.writesQueued--);
    this.writes = p.catch(() => {});
    return p;
  }

  /** Waits (up to COALESCE_MAX_MS) until no policy write is queued: one fan-out then carries them all. */
  private async writesSettled(): Promise<void> {
    const deadline = Date.now() + COALESCE_MAX_MS;
    while (this.writesQueued > 0 && Date.now() < deadline) {
      await Promise.race([this.writes, new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())))]);
      await nextTick(); // the route that committed pushes after its write resolves
    }
  }

  /** Queues the newest snapshot for every connected socket of `agentIds` (all when undefined); does not wait for it. */
  push(agentIds: readonly string[] | undefined, version: number): PushResult {
    if (agentIds === undefined) this.pendingAll = true;
    else for (const id of agentIds) this.pendingAgents.add(id);
    const want = agentIds && new Set(agentIds);
    // counted over this fleet's own sockets (those that said hello) when it holds them: listing the hub's
    // connections built an object per socket for every PUT of a burst
    const listed = this.deps.hub.fanOut ? this.deps.hub.connections() : [...this.sockets.values()].map((s) => s.conn);
    const agents = new Set<string>();
    for (const c of listed) if (!want || want.has(c.agentId)) agents.add(c.agentId);
    this.kick();
    this.deps.logger.info({ version, agents: agents.size }, 'policy push queued');
    return { pushed_to: agents.size };
  }

  /** A socket that said hello: it gets the newest snapshot whatever it held. */
  hello(conn: HubConnection): void {
    this.sockets.set(conn.connId, { conn, lastSent: -1, inFlight: undefined, sentAt: 0, owed: false });
    this.pendingSockets.set(conn.connId, conn);
    this.kick();
  }

  /** An ack or nack of `version` on a socket: the next snapshot may go, and does if one is owed. */
  answered(connId: string, version: number): void {
    const s = this.sockets.get(connId);
    if (!s || (s.inFlight !== undefined && version < s.inFlight)) return; // an answer to an older send
    s.inFlight = undefined;
    if (s.owed) {
      s.owed = false;
      this.pendingSockets.set(connId, s.conn);
      this.kick();
    }
  }

  private kick(): void {
    if (this.rounds) return;
    this.rounds = (async () => {
      await Promise.resolve(); // pushes queued by the same request join this round
      while (this.pendingAll || this.pendingAgents.size > 0 || this.pendingSockets.size > 0) {
        try {
          // a burst of REST writes: the versions still queued supersede this one, so push once, after them
          if (this.pendingAll || this.pendingAgents.size > 0) await this.writesSettled();
          await this.round();
        } catch (e) {
          this.deps.logger.error({ err: (e as Error).message }, 'policy fan-out failed');
        }
      }
      this.rounds = undefined;
    })();
  }

  private async round(): Promise<void> {
    const all = this.pendingAll;
    const agents = new Set(this.pendingAgents);
    const sockets = new Map(this.pendingSockets);
    this.pendingAll = false;
    this.pendingAgents.clear();
    this.pendingSockets.clear();
    if (this.deps.hub.fanOut) {
      // the sockets are in the hub's shards, each running its own Fleet: they read and send the newest
      if (all || agents.size > 0) this.deps.hub.fanOut(all ? undefined : [...agents], await this.deps.store.policyVersion());
      return;
    }
    // the fleet-wide listing only for REST changes: a round of hellos or acks costs its own sockets
    const conns = all || agents.size > 0 ? this.deps.hub.connections().filter((c) => all || agents.has(c.agentId)) : [];
    const listed = new Set(conns.map((c) => c.connId));
    for (const c of sockets.values()) if (!listed.has(c.connId) && this.sockets.has(c.connId)) conns.push(c); // a closed one was forgotten
    if (conns.length === 0) return;
    // the whole fleet's content, read once per version: the rounds for hellos and acks that follow at the
    // same version reuse it (on a Workers shard each read is a call to the coordinator)
    const content = await this.cache.read();
    let p = this.progress;
    if (!p || content.version > p.version) this.progress = p = { version: content.version, sent: 0, failed: 0, started_at: new Date().toISOString(), last_sent_at: null };
    const counts = { sent: 0, waiting: 0, failed: 0, current: 0 };
    let n = 0;
    for (const c of conns) {
      if (++n % SEND_SLICE === 0) await nextTick();
      counts[await this.sendOne(c, content)]++;
    }
    if (p.version === content.version) {
      p.sent += counts.sent;
      p.failed += counts.failed;
      if (counts.sent > 0) p.last_sent_at = new Date().toISOString();
    }
    this.deps.logger.info({ version: content.version, sockets: conns.length, sent: counts.sent, waiting_for_ack: counts.waiting, failed: counts.failed }, 'policy pushed');
  }

  /** A snapshot sent by one of the hub's shards (Workers): counted in this fleet's fan-out progress. */
  sentElsewhere(version: number): void {
    let p = this.progress;
    if (!p || version > p.version) this.progress = p = { version, sent: 0, failed: 0, started_at: new Date().toISOString(), last_sent_at: null };
    this.work.snapshots_sent++;
    if (p.version !== version) return;
    p.sent++;
    p.last_sent_at = new Date().toISOString();
  }

  /** The newest fan-out, and how many sockets hold an unacked snapshot or wait for one behind it. */
  fanout(): (FanoutProgress & { in_flight: number; waiting_for_ack: number; work: FanoutWork }) | null {
    if (!this.progress) return null;
    let in_flight = 0, waiting_for_ack = 0;
    for (const s of this.sockets.values()) {
      if (s.inFlight !== undefined) in_flight++;
      if (s.owed) waiting_for_ack++;
    }
    return { ...this.progress, in_flight, waiting_for_ack, work: { ...this.work } };
  }

  private async sendOne(c: HubConnection, content: FleetContent): Promise<'sent' | 'waiting' | 'failed' | 'current'> {
    let s = this.sockets.get(c.connId);
    if (!s) this.sockets.set(c.connId, (s = { conn: c, lastSent: -1, inFlight: undefined, sentAt: 0, owed: false }));
    const version = content.version;
    if (version <= s.lastSent) return 'current'; // a send that read this content already went out
    if (s.inFlight !== undefined && Date.now() - s.sentAt < ACK_WAIT_MS) {
      s.owed = true;
      return 'waiting';
    }
    try {
      const frame = await content.frameFor(c.agentId);
      if (version <= s.lastSent) return 'current';
      c.send(frame);
      this.work.snapshots_sent++;
      s.lastSent = s.inFlight = version;
      s.sentAt = Date.now();
      s.owed = false;
      gatewayMetrics(this.deps).pushed(c.agentId, version);
      return 'sent';
    } catch (e) {
      const m = (e as Error).message;
      const error = `version ${version}: snapshot not sent: ${m}${/exceeds \d+/.test(m) ? ' (the frame limit)' : ''}`;
      this.deps.logger.warn({ agent_id: c.agentId, version, err: error }, 'snapshot push failed');
      this.record(c.agentId, { last_error: error });
      return 'failed';
    }
  }

  /** Forgets a closed socket's state. */
  forget(connId: string): void {
    this.sockets.delete(connId);
    this.pendingSockets.delete(connId);
  }

  /** Queues what an agent reported; written with every other report of the batch window in one transaction. */
  record(agentId: string, patch: AgentPatch): void {
    this.records.set(agentId, { ...this.records.get(agentId), ...patch });
    if (!this.flushing) this.flushing = new Promise((r) => setTimeout(r, REPORT_BATCH_MS)).then(() => this.flushRecords());
  }

  /** Writes the queued reports now (REST reads call it first, so they see every ack received). */
  async flushRecords(): Promise<void> {
    if (this.records.size === 0) {
      this.flushing = undefined;
      return;
    }
    const batch = new Map(this.records);
    this.records.clear();
    this.flushing = undefined;
    try {
      await this.deps.store.updateAgents(batch);
      this.work.report_commits++;
      this.work.report_rows += batch.size;
    } catch (e) {
      this.deps.logger.error({ err: (e as Error).message, agents: batch.size }, 'agent reports not stored');
    }
  }
}
