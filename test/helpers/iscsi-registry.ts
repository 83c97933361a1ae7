// Test-only TargetRegistry: a hand-built target/TPG/ACL tree for driving the iSCSI fabric.
import type { AclView, ChapCredentials, DiscoveryAuth, PortalAddress, TargetRegistry, TargetView, TpgView } from '../../agent/iscsi/target-registry.js';
import type { LogicalUnitHandle, LunMapping, LunView } from '../../agent/scsi/port.js';

export const NO_CHAP: ChapCredentials = { userid: '', password: '', mutualUserid: '', mutualPassword: '' };

export function chap(userid: string, password: string, mutualUserid = '', mutualPassword = ''): ChapCredentials {
  return { userid, password, mutualUserid, mutualPassword };
}

export class StaticLunView implements LunView {
  constructor(private readonly maps: LunMapping[] = []) {}
  get(lun: number): LunMapping | undefined {
    return this.maps.find((m) => m.lun === lun);
  }
  list(): readonly LunMapping[] {
    return this.maps;
  }
  set(maps: LunMapping[]): void {
    this.maps.splice(0, this.maps.length, ...maps);
  }
}

export function lunView(lus: LogicalUnitHandle[], writeProtect = false): StaticLunView {
  return new StaticLunView(lus.map((lu, i) => ({ lun: i, lu, writeProtect, aluaGroup: 'default_tg_pt_gp' })));
}

export interface TestAcl {
  initiatorName: string;
  chap?: ChapCredentials;
  luns?: LunView;
}

export interface TestTpg {
  tag?: number;
  enabled?: boolean;
  portals: PortalAddress[];
  authentication?: boolean;
  generateNodeAcls?: boolean;
  chap?: ChapCredentials;
  parameters?: Record<string, string>;
  attributes?: Record<string, number | string | boolean>;
  acls?: TestAcl[];
  demoLuns?: LunView;
}

export interface TestTarget {
  name: string;
  tpgs: TestTpg[];
}

/** A mutable registry: tests edit `targetsList`, ACLs and `discovery` between logins. */
export class TestRegistry implements TargetRegistry {
  discovery: DiscoveryAuth = { enabled: false, chap: NO_CHAP };
  readonly targetsList: TargetView[] = [];

  constructor(targets: TestTarget[] = []) {
    for (const t of targets) this.addTarget(t);
  }

  addTarget(t: TestTarget): TargetView {
    const view: TargetView = { name: t.name, tpgs: t.tpgs.map((g, i) => makeTpg(t.name, g, i + 1)) };
    this.targetsList.push(view);
    return view;
  }

  targets(): readonly TargetView[] {
    return this.targetsList;
  }

  target(name: string): TargetView | undefined {
    return this.targetsList.find((t) => t.name === name);
  }

  discoveryAuth(): DiscoveryAuth {
    return this.discovery;
  }
}

export interface MutableTpg extends TpgView {
  acls: Map<string, AclView>;
  portals: PortalAddress[];
  enabled: boolean;
}

function makeTpg(targetName: string, g: TestTpg, defaultTag: number): MutableTpg {
  const acls = new Map<string, AclView>();
  for (const a of g.acls ?? []) {
    acls.set(a.initiatorName, { initiatorName: a.initiatorName, chap: a.chap ?? NO_CHAP, luns: a.luns ?? new StaticLunView(), managed: false });
  }
  return {
    targetName,
    tag: g.tag ?? defaultTag,
    enabled: g.enabled ?? true,
    portals: g.portals,
    authentication: g.authentication ?? false,
    generateNodeAcls: g.generateNodeAcls ?? false,
    chap: g.chap ?? NO_CHAP,
    parameters: g.parameters ?? {},
    attributes: g.attributes ?? {},
    demoLuns: g.demoLuns ?? new StaticLunView(),
    acls,
    acl(initiatorName: string) {
      return acls.get(initiatorName);
    },
  };
}
