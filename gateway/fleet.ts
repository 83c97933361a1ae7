// Fleet policy: builds each agent's full snapshot (xDS-style) from the targets assigned to it, and pushes
// it to connected agents — per socket in order, coalesced (a queued push reads the newest content when
// it starts, so an older snapshot never follows a newer one), and only when it fits in one frame.
import { MAX_FRAME_BYTES, ProtocolError, encodeMessage } from '../shared/control-protocol.js';
import type { AclPolicy, ChapPolicy, DiscoveryAuthPolicy, PolicySnapshot } from '../shared/policy.js';
import { SecretBox, fromHex } from './crypto.js';
import type { GatewayDeps, HubConnection } from './hub.js';
import { gatewayMetrics } from './metrics.js';
import type { AclRecord, PolicyContent } from './store.js';

export const aclContext = (target: string, initiator: string): string => `acl\n${target}\n${initiator}`;
export const DISCOVERY_CONTEXT = 'discovery-auth';

export interface PushError { readonly agent_id: string; readonly error: string }
export interface PushResult { readonly pushed_to: number; readonly push_errors?: PushError[] }

/** A change not yet stored, applied in memory to measure the snapshots it would produce. */
export type PendingChange =
  | { readonly kind: 'acl'; readonly target: string; readonly acl: AclPolicy }
  | { readonly kind: 'assign'; readonly agentId: string; readonly target: string }
  | { readonly kind: 'discovery'; readonly discovery: DiscoveryAuthPolicy };

type SendResult = { ok: true; version?: number } | { ok: false; error: string };

/** One socket's push queue: at most one send in flight and one queued behind it. */
class Sender {
  lastSent = -1;
  queued: Promise<SendResult> | undefined;
  tail: Promise<unknown> = Promise.resolve();
}

const fleets = new WeakMap<GatewayDeps, Fleet>();

export class Fleet {
  private boxPromise: Promise<SecretBox> | undefined;
  private readonly senders = new Map<string, Sender>();
  private writes: Promise<unknown> = Promise.resolve();

  private constructor(readonly deps: GatewayDeps) {}

  /** The one Fleet of a gateway (the REST app and the control service must share push queues). */
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

  private async openAcls(target: string, rows: readonly AclRecord[]): Promise<AclPolicy[]> {
    const box = await this.box();
    const out: AclPolicy[] = [];
    for (const a of rows) {
      const chap = a.chap_sealed ? await box.open<ChapPolicy>(a.chap_sealed, aclContext(target, a.initiator)) : undefined;
      out.push(chap ? { initiator: a.initiator, chap, mapped_luns: a.mapped_luns } : { initiator: a.initiator, mapped_luns: a.mapped_luns });
    }
    return out;
  }

  /** Decrypts one consistent read into the snapshot; `cache` shares opened targets between agents. */
  private async open(c: PolicyContent, cache = new Map<string, Promise<AclPolicy[]>>()): Promise<PolicySnapshot> {
    const targets: Record<string, AclPolicy[]> = {};
    for (const [t, rows] of Object.entries(c.targets)) {
      let p = cache.get(t);
      if (!p) cache.set(t, (p = this.openAcls(t, rows)));
      targets[t] = await p;
    }
    const d = c.discovery;
    if (!d) return { version: c.version, fleet_epoch: c.epoch, targets };
    const box = await this.box();
    const discovery_auth: DiscoveryAuthPolicy = d.sealed
      ? { enable: d.enable, ...(await box.open<Omit<DiscoveryAuthPolicy, 'enable'>>(d.sealed, DISCOVERY_CONTEXT)) }
      : { enable: d.enable, userid: '', password: '' };
    return { version: c.version, fleet_epoch: c.epoch, targets, discovery_auth };
  }

  async snapshotFor(agentId: string): Promise<PolicySnapshot> {
    return this.open(await this.deps.store.policyFor(agentId));
  }

  /**
   * Refuses (with the reason) a change that would make any affected agent's snapshot exceed one frame:
   * such a snapshot could never be sent, and the agent would keep a stale policy without a word.
   */
  async wouldOverflow(agentIds: readonly string[], change: PendingChange): Promise<string | undefined> {
    const cache = new Map<string, Promise<AclPolicy[]>>();
    for (const id of agentIds) {
      const s = await this.open(await this.deps.store.policyFor(id), cache);
      const targets: Record<string, readonly AclPolicy[]> = { ...s.targets };
      let next: PolicySnapshot = s;
      if (change.kind === 'acl' && targets[change.target]) {
        targets[change.target] = [...targets[change.target]!.filter((a) => a.initiator !== change.acl.initiator), change.acl];
        next = { ...s, targets };
      } else if (change.kind === 'assign' && change.agentId === id && !targets[change.target]) {
        targets[change.target] = await this.openAcls(change.target, await this.deps.store.listAcls(change.target));
        next = { ...s, targets };
      } else if (change.kind === 'discovery') next = { ...s, discovery_auth: change.discovery };
      // the version grows by at most a few bytes; measure with a large one
      const size = encodedSize({ ...next, version: Number.MAX_SAFE_INTEGER });
      if (size > MAX_FRAME_BYTES) {
        const agent = await this.deps.store.getAgent(id);
        return `the policy of agent ${agent?.name ?? id} would be ${size} bytes, over the ${MAX_FRAME_BYTES}-byte frame limit; nothing was stored (split the ACLs across targets, or map fewer LUNs)`;
      }
    }
    return undefined;
  }

  /**
   * Runs policy writes one at a time, so the frame-size check and the write it admits see the same
   * content (two writes that each fit cannot together overflow a snapshot). Pushes run outside it.
   */
  serializeWrite<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.writes.then(fn, fn);
    this.writes = p.catch(() => {});
    return p;
  }

  /** Queues a push of the newest snapshot to one socket; resolves when a send covering it is done. */
  sendTo(conn: HubConnection): Promise<SendResult> {
    let s = this.senders.get(conn.connId);
    if (!s) this.senders.set(conn.connId, (s = new Sender()));
    const sender = s;
    if (sender.queued) return sender.queued; // not started yet: it will read content at least this new
    const p = sender.tail.then(() => {
      sender.queued = undefined;
      return this.sendNow(conn, sender);
    });
    sender.queued = p;
    sender.tail = p.catch(() => {});
    return p;
  }

  private async sendNow(conn: HubConnection, sender: Sender): Promise<SendResult> {
    const { store, logger } = this.deps;
    let version = -1;
    try {
      const policy = await this.snapshotFor(conn.agentId);
      version = policy.version;
      if (version <= sender.lastSent) return { ok: true, version }; // a send that read this content already went out
      conn.send(encodeMessage({ type: 'snapshot', policy }));
      gatewayMetrics(this.deps).pushed(conn.agentId, version);
      sender.lastSent = version;
      return { ok: true, version };
    } catch (e) {
      const why = e instanceof ProtocolError && e.code === 'too_big' ? `snapshot not sent: ${e.message} (the frame limit)` : `snapshot not sent: ${(e as Error).message}`;
      const error = version >= 0 ? `version ${version}: ${why}` : why;
      logger.warn({ agent_id: conn.agentId, version, err: error }, 'snapshot push failed');
      try {
        await store.updateAgent(conn.agentId, { last_error: error });
      } catch {
        // the agent may have been deleted meanwhile
      }
      return { ok: false, error };
    }
  }

  /** Forgets a closed socket's queue. */
  forget(connId: string): void {
    this.senders.delete(connId);
  }

  /** Pushes the newest snapshot to every connected socket of `agentIds` (every agent when undefined). */
  async push(agentIds: readonly string[] | undefined, version: number): Promise<PushResult> {
    const want = agentIds && new Set(agentIds);
    const conns = this.deps.hub.connections().filter((c) => !want || want.has(c.agentId));
    const results = await Promise.all(conns.map(async (c) => ({ c, r: await this.sendTo(c) })));
    const errors: PushError[] = [];
    const ok = new Set<string>();
    for (const { c, r } of results) {
      if (r.ok) ok.add(c.agentId);
      else errors.push({ agent_id: c.agentId, error: r.error });
    }
    this.deps.logger.info({ version, agents: ok.size, failed: errors.length }, 'policy pushed');
    return errors.length > 0 ? { pushed_to: ok.size, push_errors: errors } : { pushed_to: ok.size };
  }
}

function encodedSize(policy: PolicySnapshot): number {
  try {
    return encodeMessage({ type: 'snapshot', policy }).byteLength;
  } catch (e) {
    const m = e instanceof ProtocolError ? /frame of (\d+) bytes/.exec(e.message) : null;
    if (m) return Number(m[1]);
    throw e;
  }
}
