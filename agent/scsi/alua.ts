// SPC-4 §5.15 asymmetric logical unit access: per-LU target port groups, their states and member ports.
import type { AluaGroupConfig, LunMapping } from './port.js';
import { AluaClass } from './opcodes.js';
import type { ReasonName } from './sense.js';

export const AluaAccessState = {
  ACTIVE_OPTIMIZED: 0x0,
  ACTIVE_NON_OPTIMIZED: 0x1,
  STANDBY: 0x2,
  UNAVAILABLE: 0x3,
  LBA_DEPENDENT: 0x4,
  OFFLINE: 0xe,
  TRANSITIONING: 0xf,
} as const;

export const AluaAccessType = { IMPLICIT: 1, EXPLICIT: 2, BOTH: 3 } as const;

export interface AluaGroup {
  readonly name: string;
  id: number;
  state: number;
  accessType: number;
  preferred: boolean;
  /** Status code of the last change (RTPG): 0 none, 1 by SET TPG, 2 implicit. */
  statusCode: number;
  /** Relative target port ids of paths that map this LU through this group. */
  readonly ports: Set<number>;
}

export const DEFAULT_GROUP: AluaGroupConfig = {
  name: 'default_tg_pt_gp',
  id: 0,
  accessState: AluaAccessState.ACTIVE_OPTIMIZED,
  accessType: AluaAccessType.IMPLICIT,
  preferred: false,
};

export class AluaGroups {
  readonly groups: AluaGroup[];
  private readonly byName = new Map<string, AluaGroup>();
  /** Set once the configuration supplies member ports; from then on logins do not add ports. */
  private portsFromConfig = false;

  constructor(configs: readonly AluaGroupConfig[]) {
    const list = configs.length > 0 ? configs : [DEFAULT_GROUP];
    this.groups = list.map((c) => ({ name: c.name, id: c.id, state: c.accessState, accessType: c.accessType, preferred: c.preferred, statusCode: 0, ports: new Set<number>() }));
    for (const g of this.groups) this.byName.set(g.name, g);
  }

  /**
   * Applies a new alua_tpgs list to the running LU (no reopen): groups keep their identity by name,
   * new ones appear, missing ones go. Returns true when any path's access state changed, so the
   * caller can raise ASYMMETRIC ACCESS STATE CHANGED (SPC-4 §5.15.2.5, implicit transition).
   */
  reconfigure(configs: readonly AluaGroupConfig[]): boolean {
    const list = configs.length > 0 ? configs : [DEFAULT_GROUP];
    let changed = false;
    const next: AluaGroup[] = [];
    for (const c of list) {
      const g = this.byName.get(c.name);
      if (!g) {
        next.push({ name: c.name, id: c.id, state: c.accessState, accessType: c.accessType, preferred: c.preferred, statusCode: 2, ports: new Set<number>() });
        changed = true;
        continue;
      }
      if (g.state !== c.accessState || g.id !== c.id) {
        g.statusCode = 2; // altered by implicit (administrative) transition
        changed = true;
      }
      g.id = c.id;
      g.state = c.accessState;
      g.accessType = c.accessType;
      g.preferred = c.preferred;
      next.push(g);
    }
    if (next.length !== this.groups.length) changed = true;
    this.groups.splice(0, this.groups.length, ...next);
    this.byName.clear();
    for (const g of this.groups) this.byName.set(g.name, g);
    return changed;
  }

  /** Member relative target port ids per group name, as the configuration maps the LU (LIO's tg_pt_gp members). */
  setPorts(byGroup: ReadonlyMap<string, Iterable<number>>): void {
    this.portsFromConfig = true;
    for (const g of this.groups) g.ports.clear();
    for (const [name, ports] of byGroup) {
      const g = this.byName.get(name) ?? this.groups[0];
      for (const p of ports) g.ports.add(p);
    }
  }

  /** The group a path belongs to; unknown names fall back to the first (default) group. */
  groupOf(mapping: LunMapping): AluaGroup {
    return this.byName.get(mapping.aluaGroup) ?? this.groups[0];
  }

  byId(id: number): AluaGroup | undefined {
    return this.groups.find((g) => g.id === id);
  }

  addPort(mapping: LunMapping, relativePortId: number): void {
    if (!this.portsFromConfig) this.groupOf(mapping).ports.add(relativePortId);
  }

  /** TPGS field of standard INQUIRY: 01 implicit only, 11 when any group allows explicit changes. */
  tpgs(): number {
    let t = 0;
    for (const g of this.groups) t |= g.accessType & 3;
    return t === 0 ? 1 : t | 1;
  }

  get anyExplicit(): boolean {
    return this.groups.some((g) => (g.accessType & AluaAccessType.EXPLICIT) !== 0);
  }
}

/** The sense reason refusing a command of `cls` in `state`, or undefined when allowed. */
export function aluaRefusal(state: number, cls: AluaClass): ReasonName | undefined {
  switch (state) {
    case AluaAccessState.ACTIVE_OPTIMIZED:
    case AluaAccessState.ACTIVE_NON_OPTIMIZED:
    case AluaAccessState.LBA_DEPENDENT:
      return undefined;
    case AluaAccessState.STANDBY:
      return cls >= AluaClass.STANDBY ? undefined : 'NOT_READY_ALUA_STANDBY';
    case AluaAccessState.UNAVAILABLE:
      return cls >= AluaClass.UNAVAILABLE ? undefined : 'NOT_READY_ALUA_UNAVAILABLE';
    case AluaAccessState.OFFLINE:
      return cls >= AluaClass.UNAVAILABLE ? undefined : 'NOT_READY_OFFLINE';
    case AluaAccessState.TRANSITIONING:
      return cls >= AluaClass.ANY ? undefined : 'NOT_READY_ALUA_TRANSITION';
    default:
      return undefined;
  }
}
