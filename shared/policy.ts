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

/** The full snapshot for one agent: every target IQN it serves that the fleet has policy for. */
export interface PolicySnapshot {
  /** Monotonic per fleet; the agent acks the version it applied. */
  readonly version: number;
  readonly targets: Readonly<Record<string, readonly AclPolicy[]>>;
  /** Absent: the agent keeps its local discovery auth. */
  readonly discovery_auth?: DiscoveryAuthPolicy;
}
