// What the gateway keeps: enrolled agents (token hashes, last reported state), which targets each agent
// is assigned, per-target ACLs with sealed secrets, fleet discovery auth, and the fleet policy version.
// Runtime adapters implement it. Every write that changes policy bumps the version in the same
// transaction, and policyFor() reads content and version together, so a version names one content.
import type { MappedLunPolicy } from '../shared/policy.js';

export interface AgentRecord {
  readonly id: string;
  readonly name: string;
  readonly token_hash: string;
  readonly created_at: string;
  readonly last_seen: string | null;
  readonly applied_version: number | null;
  readonly last_error: string | null;
  readonly agent_version: string | null;
  readonly served_targets: readonly string[];
  readonly status: Readonly<Record<string, unknown>> | null;
}

export type AgentPatch = Partial<Pick<AgentRecord, 'last_seen' | 'applied_version' | 'last_error' | 'agent_version' | 'served_targets' | 'status'>>;

/** What an agent reported about one of its targets (hello/status `inventory`). */
export interface TargetInventory {
  readonly tpg_luns: readonly number[];
  readonly local_acls: readonly string[];
}
export type AgentInventory = Readonly<Record<string, TargetInventory>>;

/** Non-secret CHAP facts, stored in clear so listings never need to decrypt. */
export interface ChapInfo {
  readonly userid: string;
  readonly mutual_userid?: string;
  readonly has_password: boolean;
  readonly has_mutual_password: boolean;
}

export interface AclRecord {
  readonly target: string;
  readonly initiator: string;
  readonly chap_info: ChapInfo | null;
  /** SecretBox blob of the full ChapPolicy, or null without CHAP. */
  readonly chap_sealed: string | null;
  readonly mapped_luns: readonly MappedLunPolicy[];
  readonly updated_at: string;
}

export interface DiscoveryAuthRecord {
  readonly enable: boolean;
  readonly info: ChapInfo | null;
  readonly sealed: string | null;
  readonly updated_at: string;
}

/** One agent's policy as of one version, read in one transaction (secrets still sealed). */
export interface PolicyContent {
  readonly version: number;
  readonly epoch: string;
  /** Every target assigned to the agent, with its ACLs (an assigned target without ACLs maps to []). */
  readonly targets: Readonly<Record<string, readonly AclRecord[]>>;
  readonly discovery: DiscoveryAuthRecord | undefined;
}

/**
 * The whole fleet's policy as of one version, read in one transaction: what every agent is assigned,
 * and the sealed ACLs of only those targets whose last change the caller has not opened yet.
 */
export interface FleetView {
  readonly version: number;
  readonly epoch: string;
  /**
   * Assigned targets per agent, sorted; an agent without assignments is absent. Undefined when the caller
   * said it holds the assignments of `assignmentsVersion` already (a policy burst does not re-read them).
   */
  readonly assignments: ReadonlyMap<string, readonly string[]> | undefined;
  /** Bumped by every assignment change (assign, unassign, agent deletion). */
  readonly assignmentsVersion: number;
  /** Version of the last change of each assigned (or asked-for) target; -1 when none was recorded. */
  readonly targetVersions: ReadonlyMap<string, number>;
  /** ACL rows of each target whose version differs from the caller's `known` one. */
  readonly rows: ReadonlyMap<string, readonly AclRecord[]>;
  readonly discovery: DiscoveryAuthRecord | undefined;
  /** Version of the last discovery-auth change (0 when never set). */
  readonly discoveryVersion: number;
}

export interface Store {
  createAgent(a: AgentRecord): Promise<void>;
  listAgents(): Promise<AgentRecord[]>;
  getAgent(id: string): Promise<AgentRecord | undefined>;
  findAgentByName(name: string): Promise<AgentRecord | undefined>;
  findAgentByTokenHash(hash: string): Promise<AgentRecord | undefined>;
  updateAgent(id: string, patch: AgentPatch): Promise<void>;
  /** Many agents' reported state in one transaction (acks and statuses are batched per tick). */
  updateAgents(patches: ReadonlyMap<string, AgentPatch>): Promise<void>;
  deleteAgent(id: string): Promise<boolean>;
  getInventory(id: string): Promise<AgentInventory | undefined>;
  setInventory(id: string, inv: AgentInventory): Promise<void>;
  /** The inventories reported by the agents assigned `target` (agents that reported none are absent). */
  inventoriesForTarget(target: string): Promise<Map<string, AgentInventory>>;

  /** Assigns a target to an agent; the new policy version, or undefined when it was already assigned. */
  assign(agentId: string, target: string): Promise<number | undefined>;
  /** The new policy version, or undefined when the target was not assigned to the agent. */
  unassign(agentId: string, target: string): Promise<number | undefined>;
  assignedTargets(agentId: string): Promise<string[]>;
  agentsForTarget(target: string): Promise<string[]>;

  /** Stores the ACL and bumps the version in one transaction; returns the new version. */
  putAcl(a: AclRecord): Promise<number>;
  /** The new version, or undefined when there was no such ACL. */
  deleteAcl(target: string, initiator: string): Promise<number | undefined>;
  getAcl(target: string, initiator: string): Promise<AclRecord | undefined>;
  /** A target's ACLs, or every ACL of the fleet when `target` is undefined. */
  listAcls(target?: string): Promise<AclRecord[]>;

  getDiscoveryAuth(): Promise<DiscoveryAuthRecord | undefined>;
  putDiscoveryAuth(d: DiscoveryAuthRecord): Promise<number>;

  policyVersion(): Promise<number>;
  /** Random id of this fleet's store: a new one means versions started again (fleet reset). */
  fleetEpoch(): Promise<string>;
  policyFor(agentId: string): Promise<PolicyContent>;
  /**
   * See FleetView; `known` is the version of each target's ACLs the caller holds opened (plain data, so the
   * call can cross a Durable Object boundary); `extra` targets are included even when no agent is assigned
   * them; `agents` limits the read to those. `assignmentsSeen`: the assignments version the caller holds (a
   * whole-fleet read only); when it is still current, `assignments` is left out and `targetVersions` covers
   * only `extra` (the caller passes the targets it knows to be assigned).
   */
  fleetView(known: ReadonlyMap<string, number>, extra?: readonly string[], agents?: readonly string[], assignmentsSeen?: number): Promise<FleetView>;
  /** Random salt (hex) of the secrets-at-rest key derivation, created with the store. */
  kdfSalt(): Promise<string>;
  /** Per agent, the version of the last change that reached its policy (assignment, its targets, discovery). */
  desiredVersions(): Promise<Map<string, number>>;
  /** Migration records (gateway/migrations.ts) as JSON by id, kept across restarts. Optional: without them a restart forgets. */
  putMigration?(id: string, record: string, running: boolean): Promise<void>;
  getMigration?(id: string): Promise<string | undefined>;
  /** The records still marked running (a restart interrupted them). */
  runningMigrations?(): Promise<string[]>;
}
