// Fleet policy as the gateway pushes it and the agent applies it (xDS-style full snapshots, versioned).
// Plain data only: this file runs on Workers and Node.

export interface ChapPolicy {
  readonly userid: string;
  readonly password: string;
  readonly mutual_userid?: string;
  readonly mutual_password?: string;
}

export interface MappedLunPolicy {
  readonly index: number; // mapped LUN number the initiator sees
  readonly tpg_lun: number; // the TPG LUN it refers to
  readonly write_protect: boolean;
}

/** One initiator's admission to one target: becomes a managed node ACL on every TPG of that target. */
export interface AclPolicy {
  readonly initiator: string; // initiator IQN
  readonly chap?: ChapPolicy;
  readonly mapped_luns: readonly MappedLunPolicy[];
}

export interface DiscoveryAuthPolicy {
  readonly enable: boolean;
  readonly userid: string;
  readonly password: string;
  readonly mutual_userid?: string;
  readonly mutual_password?: string;
}

/** The full snapshot for one agent: every target IQN assigned to it on the gateway (assigned without ACLs: []). */
export interface PolicySnapshot {
  /** Monotonic per fleet; the agent acks the version it applied. */
  readonly version: number;
  /**
   * Random id of the gateway's fleet store. The agent never applies a version lower than the one it
   * holds unless this differs from the epoch of the policy it holds: only a reset fleet (a new store,
   * whose versions start again at 1) may go "back". Absent from gateways older than this field.
   */
  readonly fleet_epoch?: string;
  readonly targets: Readonly<Record<string, readonly AclPolicy[]>>;
  /** Absent: the agent keeps its local discovery auth. */
  readonly discovery_auth?: DiscoveryAuthPolicy;
}

/**
 * Bounds on a snapshot, enforced by the agent (a bigger one is nacked before any per-item work) and by
 * the gateway. 8,192 ACLs per target is far above any LIO deployment seen; 256 mapped LUNs per ACL
 * matches LIO's practical TPG LUN count; the 1 MiB frame limit bounds the whole snapshot anyway.
 */
export const POLICY_LIMITS = {
  targets: 1024,
  aclsPerTarget: 8192,
  aclsTotal: 16384,
  lunsPerAcl: 256,
} as const;
