// Fleet snapshots built once per change per target set: each target's ACLs are opened (AES-GCM) once per
// change of that target and kept, and one encoded frame is shared by every agent of the same target set.
import { MAX_FRAME_BYTES, ProtocolError, encodeMessage } from '../shared/control-protocol.js';
import type { AclPolicy, ChapPolicy, DiscoveryAuthPolicy, PolicySnapshot } from '../shared/policy.js';
import type { SecretBox } from './crypto.js';
import type { AclRecord, FleetView, Store } from './store.js';

export const aclContext = (target: string, initiator: string): string => `acl\n${target}\n${initiator}`;
export const DISCOVERY_CONTEXT = 'discovery-auth';

/** A change not yet stored, applied in memory to measure the snapshots it would produce. */
export type PendingChange =
  | { readonly kind: 'acl'; readonly target: string; readonly acl: AclPolicy }
  | { readonly kind: 'assign'; readonly agentId: string; readonly target: string }
  | { readonly kind: 'discovery'; readonly discovery: DiscoveryAuthPolicy };

interface Opened<T> { readonly version: number; readonly value: Promise<T> }

/** A fleet view with its assignments (filled in from an earlier view when the store left them out). */
type FullView = FleetView & { readonly assignments: ReadonlyMap<string, readonly string[]> };

/** One fleet version with its opened content; frames are built lazily, once per target set. */
export class FleetContent {
  private readonly frames = new Map<string, Promise<Uint8Array>>();

  /** Settles if any of this content's opens fails (a wrong key, a corrupt blob): it must not be reused. */
  readonly failed: Promise<void>;

  constructor(
    readonly view: FullView,
    private readonly targets: ReadonlyMap<string, Promise<AclPolicy[]>>,
    private readonly discovery: Promise<DiscoveryAuthPolicy | undefined>,
    private readonly built: () => void = () => {},
  ) {
    this.failed = new Promise((resolve) => {
      for (const p of [...targets.values(), discovery]) p.catch(() => resolve());
    });
  }

  get version(): number {
    return this.view.version;
  }

  targetsOf(agentId: string): readonly string[] {
    return this.view.assignments.get(agentId) ?? [];
  }

  async snapshot(targets: readonly string[]): Promise<PolicySnapshot> {
    const out: Record<string, AclPolicy[]> = {};
    for (const t of targets) out[t] = await (this.targets.get(t) ?? Promise.resolve([]));
    const discovery_auth = await this.discovery;
    const base = { version: this.view.version, fleet_epoch: this.view.epoch, targets: out };
    return discovery_auth ? { ...base, discovery_auth } : base;
  }

  /** The encoded snapshot of an agent; agents with the same targets share one frame. */
  frameFor(agentId: string): Promise<Uint8Array> {
    const targets = this.targetsOf(agentId);
    const key = targets.join('\n');
    let f = this.frames.get(key);
    if (!f) {
      this.built();
      this.frames.set(key, (f = this.snapshot(targets).then((policy) => encodeMessage({ type: 'snapshot', policy }))));
    }
    return f;
  }
}

export class SnapshotCache {
  private readonly opened = new Map<string, Opened<AclPolicy[]>>();
  private discovery: Opened<DiscoveryAuthPolicy | undefined> | undefined;
  /** The last fleet-wide read: while the version is unchanged it is the fleet's content, frames included. */
  private whole: FleetContent | undefined;

  constructor(private readonly store: Store, private readonly box: () => Promise<SecretBox>, private readonly built: () => void = () => {}) {}

  /** The fleet as of one version; only targets changed since they were last opened are read and opened. */
  async read(extra: readonly string[] = [], agents?: readonly string[]): Promise<FleetContent> {
    // Every policy write bumps the version in its transaction, so an unchanged version is unchanged content:
    // the rounds of a fan-out (one per batch of acks) and the frame-size checks of a burst share one read.
    const whole = this.whole;
    if (whole && extra.every((t) => whole.view.targetVersions.has(t)) && (await this.store.policyVersion()) === whole.version) return whole;
    const known = new Map([...this.opened].map(([t, e]) => [t, e.version] as const));
    // a concurrent read may replace an entry between our view and our pinning: then re-read in full
    const content = (await this.tryRead(known, extra, agents, whole)) ?? (await this.tryRead(new Map(), extra, agents, undefined))!;
    if (agents === undefined && (!this.whole || this.whole.version <= content.version)) {
      this.whole = content;
      content.failed.then(() => this.whole === content && (this.whole = undefined));
    }
    return content;
  }

  private async tryRead(known: ReadonlyMap<string, number>, extra: readonly string[], agents: readonly string[] | undefined, prev: FleetContent | undefined): Promise<FleetContent | undefined> {
    // A whole-fleet read after a policy change (every PUT of a burst checks the frame size fleet-wide) reuses
    // the previous read's assignments while they are unchanged: only the targets' versions and rows are read.
    const reuse = agents === undefined ? prev : undefined;
    const wanted = reuse ? [...new Set([...extra, ...reuse.view.targetVersions.keys()])] : extra;
    const got = await this.store.fleetView(known, wanted, agents, reuse?.view.assignmentsVersion);
    if (!got.assignments && !reuse) return undefined; // not asked for: cannot happen with a conforming store
    const view: FullView = got.assignments ? { ...got, assignments: got.assignments } : { ...got, assignments: reuse!.view.assignments };
    // from here to the return there is no await: what is pinned belongs to this view's version
    const targets = new Map<string, Promise<AclPolicy[]>>();
    for (const [t, v] of view.targetVersions) {
      const rows = view.rows.get(t);
      if (rows) {
        const value = this.openAcls(t, rows);
        if (v !== -1 && (this.opened.get(t)?.version ?? -1) <= v) this.remember(this.opened, t, { version: v, value });
        targets.set(t, value);
        continue;
      }
      const e = this.opened.get(t);
      if (!e || e.version !== v) return undefined;
      targets.set(t, e.value);
    }
    if (!this.discovery || this.discovery.version !== view.discoveryVersion || view.discoveryVersion === 0) {
      const d = view.discovery;
      const value = d ? this.openDiscovery(d.enable, d.sealed) : Promise.resolve(undefined);
      const entry = { version: view.discoveryVersion, value };
      if (!this.discovery || this.discovery.version <= entry.version) this.discovery = entry;
      value.catch(() => this.discovery === entry && (this.discovery = undefined));
      return new FleetContent(view, targets, value, this.built);
    }
    return new FleetContent(view, targets, this.discovery.value, this.built);
  }

  /** A failed open (wrong key, corrupt blob) is not cached: the next read tries again. */
  private remember(map: Map<string, Opened<AclPolicy[]>>, t: string, e: Opened<AclPolicy[]>): void {
    map.set(t, e);
    e.value.catch(() => map.get(t) === e && map.delete(t));
  }

  private async openAcls(target: string, rows: readonly AclRecord[]): Promise<AclPolicy[]> {
    const box = await this.box();
    return Promise.all(rows.map(async (a): Promise<AclPolicy> => {
      const chap = a.chap_sealed ? await box.open<ChapPolicy>(a.chap_sealed, aclContext(target, a.initiator)) : undefined;
      return chap ? { initiator: a.initiator, chap, mapped_luns: a.mapped_luns } : { initiator: a.initiator, mapped_luns: a.mapped_luns };
    }));
  }

  private async openDiscovery(enable: boolean, sealed: string | null): Promise<DiscoveryAuthPolicy> {
    if (!sealed) return { enable, userid: '', password: '' };
    return { enable, ...(await (await this.box()).open<Omit<DiscoveryAuthPolicy, 'enable'>>(sealed, DISCOVERY_CONTEXT)) };
  }

  /**
   * Why a change would make an affected agent's snapshot exceed one frame (such a snapshot could never
   * be sent), or undefined. Measured once per distinct target set among `agentIds`.
   */
  async wouldOverflow(agentIds: readonly string[], change: PendingChange): Promise<string | undefined> {
    // a fleet-wide change reads every assignment once; a narrower one only its agents'
    const content = await this.read(change.kind === 'assign' ? [change.target] : [], agentIds.length > 64 ? undefined : agentIds);
    const bySet = new Map<string, { targets: readonly string[]; agent: string }>();
    for (const id of agentIds) {
      let targets = content.targetsOf(id);
      if (change.kind === 'assign' && change.agentId === id && !targets.includes(change.target)) targets = [...targets, change.target].sort();
      const key = targets.join('\n');
      if (!bySet.has(key)) bySet.set(key, { targets, agent: id });
    }
    for (const { targets, agent } of bySet.values()) {
      const s = await content.snapshot(targets);
      let next: PolicySnapshot = s;
      if (change.kind === 'acl' && s.targets[change.target]) {
        next = { ...s, targets: { ...s.targets, [change.target]: [...s.targets[change.target]!.filter((a) => a.initiator !== change.acl.initiator), change.acl] } };
      } else if (change.kind === 'discovery') next = { ...s, discovery_auth: change.discovery };
      // the version grows by at most a few bytes; measure with a large one
      const size = encodedSize({ ...next, version: Number.MAX_SAFE_INTEGER });
      if (size > MAX_FRAME_BYTES) {
        const name = (await this.store.getAgent(agent))?.name ?? agent;
        return `the policy of agent ${name} would be ${size} bytes, over the ${MAX_FRAME_BYTES}-byte frame limit; nothing was stored (split the ACLs across targets, or map fewer LUNs)`;
      }
    }
    return undefined;
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
