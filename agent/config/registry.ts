// TargetRegistry (agent/iscsi/target-registry.ts) over the live model: what the fabric sees at login and
// discovery. LUN views are cached per ACL and recomputed when the model generation changes, so ACL and LUN
// edits reach logged-in sessions without re-login.
import type { AclView, ChapCredentials, DiscoveryAuth, TargetRegistry, TargetView, TpgView } from '../iscsi/target-registry.js';
import type { LogicalUnitHandle, LunMapping, LunView } from '../scsi/port.js';
import { effectiveAcls } from './managed.js';
import { relativePortId, relativePortIds } from './ports.js';
import { advertisedPortal } from './tunnels.js';
import { sameIscsiName } from './names.js';
import { iscsiFabric, iscsiTargets, type RootConfig, type TargetConfig, type TpgConfig } from './schema.js';

export interface LiveState {
  model(): RootConfig;
  /** Increments on every committed change. */
  generation(): number;
  /** The running logical unit for a storage object path, if it opened. */
  unit(path: string): LogicalUnitHandle | undefined;
  /** Discovery auth pushed by the gateway, overriding the local one. */
  managedDiscovery(): DiscoveryAuth | undefined;
}

const NO_CHAP: ChapCredentials = Object.freeze({ userid: '', password: '', mutualUserid: '', mutualPassword: '' });

function chap(o: { chap_userid?: string; chap_password?: string; chap_mutual_userid?: string; chap_mutual_password?: string }): ChapCredentials {
  return { userid: o.chap_userid ?? '', password: o.chap_password ?? '', mutualUserid: o.chap_mutual_userid ?? '', mutualPassword: o.chap_mutual_password ?? '' };
}

class CachedLunView implements LunView {
  private gen = -1;
  private byLun = new Map<number, LunMapping>();
  private all: LunMapping[] = [];

  constructor(private readonly state: LiveState, private readonly compute: (root: RootConfig) => LunMapping[]) {}

  private refresh(): void {
    const g = this.state.generation();
    if (g === this.gen) return;
    this.all = this.compute(this.state.model()).sort((a, b) => a.lun - b.lun);
    this.byLun = new Map(this.all.map((m) => [m.lun, m]));
    this.gen = g;
  }

  get(lun: number): LunMapping | undefined {
    this.refresh();
    return this.byLun.get(lun);
  }

  list(): readonly LunMapping[] {
    this.refresh();
    return this.all;
  }
}

function findTpg(root: RootConfig, target: string, tag: number): TpgConfig | undefined {
  return iscsiTargets(root).find((t) => sameIscsiName(t.wwn, target))?.tpgs.find((g) => g.tag === tag);
}

export class LiveRegistry implements TargetRegistry {
  private readonly views = new Map<string, CachedLunView>();

  constructor(private readonly state: LiveState) {}

  /** Live LUN view of one initiator on one TPG (null initiator: demo-mode view). Stable per key. */
  lunView(target: string, tag: number, initiator: string | null): LunView {
    const key = `${target.toLowerCase()}|${tag}|${initiator?.toLowerCase() ?? '*'}`;
    let v = this.views.get(key);
    if (!v) {
      v = new CachedLunView(this.state, (root) => this.mappings(root, target, tag, initiator));
      this.views.set(key, v);
    }
    return v;
  }

  private mappings(root: RootConfig, target: string, tag: number, initiator: string | null): LunMapping[] {
    const tpg = findTpg(root, target, tag);
    if (!tpg) return [];
    const out: LunMapping[] = [];
    const prodWp = Number(tpg.attributes.prod_mode_write_protect ?? 0) === 1;
    const push = (lunNo: number, tpgLun: number, wp: boolean) => {
      const lun = tpg.luns.find((l) => l.index === tpgLun);
      const lu = lun && this.state.unit(lun.storage_object);
      if (lun && lu) out.push({ lun: lunNo, lu, writeProtect: wp || prodWp, aluaGroup: lun.alua_tg_pt_gp_name ?? 'default_tg_pt_gp' });
    };
    if (initiator === null) {
      const wp = Number(tpg.attributes.demo_mode_write_protect ?? 1) === 1;
      for (const l of tpg.luns) push(l.index, l.index, wp);
      return out;
    }
    const acl = effectiveAcls(tpg).find((a) => sameIscsiName(a.node_wwn, initiator));
    for (const m of acl?.mapped_luns ?? []) push(m.index, m.tpg_lun, m.write_protect);
    return out;
  }

  private tpgView(t: TargetConfig, tpg: TpgConfig, ids: ReadonlyMap<string, number>): TpgView {
    const attrs = tpg.attributes;
    return {
      targetName: t.wwn,
      tag: tpg.tag,
      relativePortId: relativePortId(ids, t.wwn, tpg.tag),
      enabled: tpg.enable,
      portals: tpg.portals.map((p) => ({ ip: p.ip_address.replace(/^\[(.*)\]$/, '$1'), port: p.port })),
      tunnelPortals: (tpg.outpost_tunnels ?? []).map((t) => advertisedPortal(t.advertise)),
      authentication: Number(attrs.authentication ?? 0) === 1,
      generateNodeAcls: Number(attrs.generate_node_acls ?? 0) === 1,
      chap: chap(tpg),
      parameters: tpg.parameters,
      attributes: attrs,
      acl: (initiatorName: string): AclView | undefined => {
        const cur = findTpg(this.state.model(), t.wwn, tpg.tag) ?? tpg;
        const acl = effectiveAcls(cur).find((a) => sameIscsiName(a.node_wwn, initiatorName));
        if (!acl) return undefined;
        return { initiatorName: acl.node_wwn, chap: chap(acl), luns: this.lunView(t.wwn, tpg.tag, acl.node_wwn), managed: Boolean(acl.outpost_managed) };
      },
      demoLuns: this.lunView(t.wwn, tpg.tag, null),
    };
  }

  targets(): readonly TargetView[] {
    const root = this.state.model();
    const ids = relativePortIds(root);
    return iscsiTargets(root).map((t) => ({ name: t.wwn, tpgs: t.tpgs.map((g) => this.tpgView(t, g, ids)) }));
  }

  target(name: string): TargetView | undefined {
    const root = this.state.model();
    const t = iscsiTargets(root).find((x) => sameIscsiName(x.wwn, name));
    if (!t) return undefined;
    const ids = relativePortIds(root);
    return { name: t.wwn, tpgs: t.tpgs.map((g) => this.tpgView(t, g, ids)) };
  }

  discoveryAuth(): DiscoveryAuth {
    const managed = this.state.managedDiscovery();
    if (managed) return managed;
    const f = iscsiFabric(this.state.model());
    if (!f) return { enabled: false, chap: NO_CHAP };
    return {
      enabled: Boolean(f.discovery_enable_auth),
      chap: { userid: f.discovery_userid ?? '', password: f.discovery_password ?? '', mutualUserid: f.discovery_mutual_userid ?? '', mutualPassword: f.discovery_mutual_password ?? '' },
    };
  }
}
