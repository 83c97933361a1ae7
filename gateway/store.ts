// What the gateway keeps: enrolled agents (token hashes, last reported state), per-target ACLs with
// sealed secrets, fleet discovery auth, and the fleet policy version. Runtime adapters implement it.
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

export interface Store {
  createAgent(a: AgentRecord): Promise<void>;
  listAgents(): Promise<AgentRecord[]>;
  getAgent(id: string): Promise<AgentRecord | undefined>;
  findAgentByTokenHash(hash: string): Promise<AgentRecord | undefined>;
  updateAgent(id: string, patch: AgentPatch): Promise<void>;
  deleteAgent(id: string): Promise<boolean>;

  putAcl(a: AclRecord): Promise<void>;
  deleteAcl(target: string, initiator: string): Promise<boolean>;
  listAcls(target: string): Promise<AclRecord[]>;
  /** Of `targets`, those the fleet has ever held policy for (an emptied target still gets `[]` pushed). */
  knownTargets(targets: readonly string[]): Promise<string[]>;

  getDiscoveryAuth(): Promise<DiscoveryAuthRecord | undefined>;
  putDiscoveryAuth(d: DiscoveryAuthRecord): Promise<void>;

  policyVersion(): Promise<number>;
  bumpPolicyVersion(): Promise<number>;
}
