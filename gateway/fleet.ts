// Fleet policy: builds each agent's full snapshot (xDS-style) and pushes it to the agents that serve a target.
import { encodeMessage } from '../shared/control-protocol.js';
import type { AclPolicy, ChapPolicy, DiscoveryAuthPolicy, PolicySnapshot } from '../shared/policy.js';
import { SecretBox } from './crypto.js';
import type { GatewayDeps, HubConnection } from './hub.js';
import { gatewayMetrics } from './metrics.js';

export const aclContext = (target: string, initiator: string): string => `acl\n${target}\n${initiator}`;
export const DISCOVERY_CONTEXT = 'discovery-auth';

export class Fleet {
  private boxPromise: Promise<SecretBox> | undefined;

  constructor(readonly deps: GatewayDeps) {}

  box(): Promise<SecretBox> {
    this.boxPromise ??= SecretBox.fromSecret(this.deps.secretKey);
    return this.boxPromise;
  }

  /** The snapshot for an agent serving `servedTargets`: every served target the fleet has policy for. */
  async snapshotFor(servedTargets: readonly string[], version?: number): Promise<PolicySnapshot> {
    const { store } = this.deps;
    const box = await this.box();
    const v = version ?? (await store.policyVersion());
    const targets: Record<string, AclPolicy[]> = {};
    for (const target of await store.knownTargets([...new Set(servedTargets)])) {
      const acls: AclPolicy[] = [];
      for (const a of await store.listAcls(target)) {
        const chap = a.chap_sealed ? await box.open<ChapPolicy>(a.chap_sealed, aclContext(a.target, a.initiator)) : undefined;
        acls.push(chap ? { initiator: a.initiator, chap, mapped_luns: a.mapped_luns } : { initiator: a.initiator, mapped_luns: a.mapped_luns });
      }
      targets[target] = acls;
    }
    const d = await store.getDiscoveryAuth();
    if (!d) return { version: v, targets };
    const discovery_auth: DiscoveryAuthPolicy = d.sealed
      ? { enable: d.enable, ...(await box.open<Omit<DiscoveryAuthPolicy, 'enable'>>(d.sealed, DISCOVERY_CONTEXT)) }
      : { enable: d.enable, userid: '', password: '' };
    return { version: v, targets, discovery_auth };
  }

  async sendSnapshot(conn: HubConnection, version?: number): Promise<void> {
    const policy = await this.snapshotFor(conn.servedTargets, version);
    conn.send(encodeMessage({ type: 'snapshot', policy }));
    gatewayMetrics(this.deps).pushed(conn.agentId, policy.version);
  }

  /** Pushes the current snapshot to every connected agent serving `target` (all agents when undefined). */
  async push(target: string | undefined, version: number): Promise<number> {
    let n = 0;
    for (const conn of this.deps.hub.connections()) {
      if (target !== undefined && !conn.servedTargets.includes(target)) continue;
      try {
        await this.sendSnapshot(conn, version);
        n++;
      } catch (e) {
        this.deps.logger.warn({ agent_id: conn.agentId, err: (e as Error).message }, 'snapshot push failed');
      }
    }
    this.deps.logger.info({ target, version, agents: n }, 'policy pushed');
    return n;
  }
}
