// Store on any synchronous SQLite driver: @photostructure/sqlite (node:sqlite API) on Node, ctx.storage.sql in a Durable Object.
import type { AclRecord, AgentInventory, AgentPatch, AgentRecord, DiscoveryAuthRecord, FleetView, PolicyContent, Store } from './store.js';

export type SqlValue = string | number | null;

/** The two calls the store needs; `run` for statements without rows. */
export interface SqlDriver {
  all(sql: string, params: readonly SqlValue[]): Record<string, SqlValue>[];
  run(sql: string, params: readonly SqlValue[]): void;
  /** Runs `fn` in one transaction (rolled back if it throws); drivers without it run `fn` as is. */
  transaction?<T>(fn: () => T): T;
  /**
   * A transaction whose commit need not reach the disk before it returns (agents' reports: the next
   * durable commit carries it). Drivers without it use `transaction`.
   */
  lazyTransaction?<T>(fn: () => T): T;
}

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
     created_at TEXT NOT NULL, last_seen TEXT, applied_version INTEGER, last_error TEXT, agent_version TEXT,
     served_targets TEXT NOT NULL DEFAULT '[]', status TEXT)`,
  `CREATE TABLE IF NOT EXISTS acls (target TEXT NOT NULL, initiator TEXT NOT NULL, chap_info TEXT, chap_sealed TEXT,
     mapped_luns TEXT NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (target, initiator))`,
  `CREATE TABLE IF NOT EXISTS targets (target TEXT PRIMARY KEY)`,
  `CREATE TABLE IF NOT EXISTS discovery_auth (id INTEGER PRIMARY KEY CHECK (id = 1), enable INTEGER NOT NULL,
     info TEXT, sealed TEXT, updated_at TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS fleet (id INTEGER PRIMARY KEY CHECK (id = 1), epoch TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS assignments (agent_id TEXT NOT NULL, target TEXT NOT NULL, assigned_at TEXT NOT NULL,
     PRIMARY KEY (agent_id, target))`,
  // scope: 'target\n<iqn>', 'agent\n<id>' or 'discovery'; version: the policy version of its last change
  `CREATE TABLE IF NOT EXISTS changes (scope TEXT PRIMARY KEY, version INTEGER NOT NULL)`,
  // enrolment checks names case-insensitively: without it, enrolling agent N scans N rows
  `CREATE INDEX IF NOT EXISTS agents_by_name ON agents (lower(name))`,
  // who is assigned a target: read by every ACL change of it
  `CREATE INDEX IF NOT EXISTS assignments_by_target ON assignments (target, agent_id)`,
  `CREATE TABLE IF NOT EXISTS kdf (id INTEGER PRIMARY KEY CHECK (id = 1), salt TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS inventory (agent_id TEXT PRIMARY KEY, inventory TEXT NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS migrations (id TEXT PRIMARY KEY, record TEXT NOT NULL, running INTEGER NOT NULL)`,
];

const targetScope = (t: string): string => `target\n${t}`;
const agentScope = (id: string): string => `agent\n${id}`;
const DISCOVERY_SCOPE = 'discovery';

const json = <T>(v: SqlValue): T => JSON.parse(String(v)) as T;

function agentRow(r: Record<string, SqlValue>): AgentRecord {
  return {
    id: String(r.id),
    name: String(r.name),
    token_hash: String(r.token_hash),
    created_at: String(r.created_at),
    last_seen: r.last_seen === null ? null : String(r.last_seen),
    applied_version: r.applied_version === null ? null : Number(r.applied_version),
    last_error: r.last_error === null ? null : String(r.last_error),
    agent_version: r.agent_version === null ? null : String(r.agent_version),
    served_targets: json<string[]>(r.served_targets ?? '[]'),
    status: r.status === null || r.status === undefined ? null : json<Record<string, unknown>>(r.status),
  };
}

function aclRow(r: Record<string, SqlValue>): AclRecord {
  return {
    target: String(r.target),
    initiator: String(r.initiator),
    chap_info: r.chap_info === null ? null : json(r.chap_info),
    chap_sealed: r.chap_sealed === null ? null : String(r.chap_sealed),
    mapped_luns: json(r.mapped_luns),
    updated_at: String(r.updated_at),
  };
}

const PATCH_COLUMNS = ['last_seen', 'applied_version', 'last_error', 'agent_version', 'served_targets', 'status'] as const;

export class SqlStore implements Store {
  /**
   * agentsForTarget() per target, dropped at every assignment change: each ACL change of a target shared by
   * 10,000 agents read 10,000 rows twice (its frame-size check and its push), the largest cost of a burst.
   * This store is the database's only writer (one per gateway process, or the Workers coordinator).
   */
  private readonly agentsByTarget = new Map<string, readonly string[]>();

  constructor(private readonly db: SqlDriver) {
    for (const s of SCHEMA) db.run(s, []);
    db.run('INSERT OR IGNORE INTO fleet (id, epoch) VALUES (1, ?)', [crypto.randomUUID()]);
    const salt = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, '0')).join('');
    db.run('INSERT OR IGNORE INTO kdf (id, salt) VALUES (1, ?)', [salt]);
  }

  private tx<T>(fn: () => T): T {
    return this.db.transaction ? this.db.transaction(fn) : fn();
  }

  /** Bumps the fleet version and records it as the last change of each scope (inside a transaction). */
  private bump(scopes: readonly string[]): number {
    this.db.run("INSERT INTO meta (key, value) VALUES ('policy_version', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1", []);
    const v = this.versionNow();
    for (const s of scopes) this.db.run('INSERT INTO changes (scope, version) VALUES (?, ?) ON CONFLICT (scope) DO UPDATE SET version = excluded.version', [s, v]);
    return v;
  }

  private versionNow(): number {
    const r = this.db.all("SELECT value FROM meta WHERE key = 'policy_version'", [])[0];
    return r ? Number(r.value) : 0;
  }

  /** An assignment changed (inside its transaction): fleet views and the per-target agent lists are stale. */
  private assignmentsChanged(): void {
    this.db.run("INSERT INTO meta (key, value) VALUES ('assignments_version', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1", []);
    this.agentsByTarget.clear();
  }

  private assignmentsVersion(): number {
    const r = this.db.all("SELECT value FROM meta WHERE key = 'assignments_version'", [])[0];
    return r ? Number(r.value) : 0;
  }

  async createAgent(a: AgentRecord): Promise<void> {
    this.db.run('INSERT INTO agents (id, name, token_hash, created_at, served_targets) VALUES (?, ?, ?, ?, ?)', [a.id, a.name, a.token_hash, a.created_at, JSON.stringify(a.served_targets)]);
  }
  async listAgents(): Promise<AgentRecord[]> {
    return this.db.all('SELECT * FROM agents ORDER BY created_at, id', []).map(agentRow);
  }
  async getAgent(id: string): Promise<AgentRecord | undefined> {
    const r = this.db.all('SELECT * FROM agents WHERE id = ?', [id])[0];
    return r && agentRow(r);
  }
  async findAgentByName(name: string): Promise<AgentRecord | undefined> {
    const r = this.db.all('SELECT * FROM agents WHERE lower(name) = lower(?)', [name])[0];
    return r && agentRow(r);
  }
  async findAgentByTokenHash(hash: string): Promise<AgentRecord | undefined> {
    const r = this.db.all('SELECT * FROM agents WHERE token_hash = ?', [hash])[0];
    return r && agentRow(r);
  }
  async updateAgent(id: string, patch: AgentPatch): Promise<void> {
    this.patchAgent(id, patch);
  }
  async updateAgents(patches: ReadonlyMap<string, AgentPatch>): Promise<void> {
    // one commit for a tick's worth of acks and statuses, and no fsync of its own: an fsync per report
    // blocks the event loop (the driver is synchronous) for each hello of a reconnecting fleet
    const run = (): void => {
      for (const [id, patch] of patches) this.patchAgent(id, patch);
    };
    if (this.db.lazyTransaction) this.db.lazyTransaction(run);
    else this.tx(run);
  }
  private patchAgent(id: string, patch: AgentPatch): void {
    const sets: string[] = [];
    const params: SqlValue[] = [];
    for (const col of PATCH_COLUMNS) {
      if (!(col in patch)) continue;
      const v = patch[col];
      sets.push(`${col} = ?`);
      params.push(v === null || v === undefined ? null : typeof v === 'object' ? JSON.stringify(v) : v);
    }
    if (sets.length === 0) return;
    this.db.run(`UPDATE agents SET ${sets.join(', ')} WHERE id = ?`, [...params, id]);
  }
  async deleteAgent(id: string): Promise<boolean> {
    return this.tx(() => {
      const had = this.db.all('SELECT id FROM agents WHERE id = ?', [id]).length > 0;
      this.db.run('DELETE FROM agents WHERE id = ?', [id]);
      this.db.run('DELETE FROM assignments WHERE agent_id = ?', [id]);
      this.assignmentsChanged();
      this.db.run('DELETE FROM inventory WHERE agent_id = ?', [id]);
      this.db.run('DELETE FROM changes WHERE scope = ?', [agentScope(id)]);
      return had;
    });
  }
  async getInventory(id: string): Promise<AgentInventory | undefined> {
    const r = this.db.all('SELECT inventory FROM inventory WHERE agent_id = ?', [id])[0];
    return r ? json<AgentInventory>(r.inventory) : undefined;
  }
  async setInventory(id: string, inv: AgentInventory): Promise<void> {
    this.db.run('INSERT INTO inventory (agent_id, inventory) VALUES (?, ?) ON CONFLICT (agent_id) DO UPDATE SET inventory = excluded.inventory', [id, JSON.stringify(inv)]);
  }

  async inventoriesForTarget(target: string): Promise<Map<string, AgentInventory>> {
    const rows = this.db.all('SELECT inventory.agent_id, inventory.inventory FROM inventory JOIN assignments ON assignments.agent_id = inventory.agent_id WHERE assignments.target = ? ORDER BY inventory.agent_id', [target]);
    return new Map(rows.map((r) => [String(r.agent_id), json<AgentInventory>(r.inventory)]));
  }

  async assign(agentId: string, target: string): Promise<number | undefined> {
    return this.tx(() => {
      if (this.db.all('SELECT 1 AS x FROM assignments WHERE agent_id = ? AND target = ?', [agentId, target]).length > 0) return undefined;
      this.db.run('INSERT INTO assignments (agent_id, target, assigned_at) VALUES (?, ?, ?)', [agentId, target, new Date().toISOString()]);
      this.assignmentsChanged();
      return this.bump([agentScope(agentId)]);
    });
  }
  async unassign(agentId: string, target: string): Promise<number | undefined> {
    return this.tx(() => {
      if (this.db.all('SELECT 1 AS x FROM assignments WHERE agent_id = ? AND target = ?', [agentId, target]).length === 0) return undefined;
      this.db.run('DELETE FROM assignments WHERE agent_id = ? AND target = ?', [agentId, target]);
      this.assignmentsChanged();
      return this.bump([agentScope(agentId)]);
    });
  }
  async assignedTargets(agentId: string): Promise<string[]> {
    return this.db.all('SELECT target FROM assignments WHERE agent_id = ? ORDER BY target', [agentId]).map((r) => String(r.target));
  }
  async agentsForTarget(target: string): Promise<string[]> {
    let ids = this.agentsByTarget.get(target);
    if (!ids) this.agentsByTarget.set(target, (ids = this.db.all('SELECT agent_id FROM assignments WHERE target = ? ORDER BY agent_id', [target]).map((r) => String(r.agent_id))));
    return [...ids]; // the caller's own copy
  }

  async putAcl(a: AclRecord): Promise<number> {
    return this.tx(() => {
      this.db.run('INSERT OR IGNORE INTO targets (target) VALUES (?)', [a.target]);
      this.db.run(
        `INSERT INTO acls (target, initiator, chap_info, chap_sealed, mapped_luns, updated_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (target, initiator) DO UPDATE SET chap_info = excluded.chap_info, chap_sealed = excluded.chap_sealed,
         mapped_luns = excluded.mapped_luns, updated_at = excluded.updated_at`,
        [a.target, a.initiator, a.chap_info && JSON.stringify(a.chap_info), a.chap_sealed, JSON.stringify(a.mapped_luns), a.updated_at],
      );
      return this.bump([targetScope(a.target)]);
    });
  }
  async deleteAcl(target: string, initiator: string): Promise<number | undefined> {
    return this.tx(() => {
      if (this.db.all('SELECT 1 AS x FROM acls WHERE target = ? AND initiator = ?', [target, initiator]).length === 0) return undefined;
      this.db.run('DELETE FROM acls WHERE target = ? AND initiator = ?', [target, initiator]);
      return this.bump([targetScope(target)]);
    });
  }
  async getAcl(target: string, initiator: string): Promise<AclRecord | undefined> {
    const r = this.db.all('SELECT * FROM acls WHERE target = ? AND initiator = ?', [target, initiator])[0];
    return r && aclRow(r);
  }
  async listAcls(target?: string): Promise<AclRecord[]> {
    if (target === undefined) return this.db.all('SELECT * FROM acls ORDER BY target, initiator', []).map(aclRow);
    return this.db.all('SELECT * FROM acls WHERE target = ? ORDER BY initiator', [target]).map(aclRow);
  }

  async getDiscoveryAuth(): Promise<DiscoveryAuthRecord | undefined> {
    return this.discoveryNow();
  }
  private discoveryNow(): DiscoveryAuthRecord | undefined {
    const r = this.db.all('SELECT * FROM discovery_auth WHERE id = 1', [])[0];
    if (!r) return undefined;
    return { enable: r.enable === 1, info: r.info === null ? null : json(r.info), sealed: r.sealed === null ? null : String(r.sealed), updated_at: String(r.updated_at) };
  }
  async putDiscoveryAuth(d: DiscoveryAuthRecord): Promise<number> {
    return this.tx(() => {
      this.db.run(
        `INSERT INTO discovery_auth (id, enable, info, sealed, updated_at) VALUES (1, ?, ?, ?, ?)
         ON CONFLICT (id) DO UPDATE SET enable = excluded.enable, info = excluded.info, sealed = excluded.sealed, updated_at = excluded.updated_at`,
        [d.enable ? 1 : 0, d.info && JSON.stringify(d.info), d.sealed, d.updated_at],
      );
      return this.bump([DISCOVERY_SCOPE]);
    });
  }

  async policyVersion(): Promise<number> {
    return this.versionNow();
  }
  async fleetEpoch(): Promise<string> {
    return String(this.db.all('SELECT epoch FROM fleet WHERE id = 1', [])[0]!.epoch);
  }
  async policyFor(agentId: string): Promise<PolicyContent> {
    // One synchronous read: no other request can commit between the version and the content.
    return this.tx(() => {
      const targets: Record<string, AclRecord[]> = {};
      for (const r of this.db.all('SELECT target FROM assignments WHERE agent_id = ? ORDER BY target', [agentId])) targets[String(r.target)] = [];
      const rows = this.db.all('SELECT acls.* FROM acls JOIN assignments ON assignments.target = acls.target WHERE assignments.agent_id = ? ORDER BY acls.target, acls.initiator', [agentId]);
      for (const r of rows) targets[String(r.target)]!.push(aclRow(r));
      const epoch = String(this.db.all('SELECT epoch FROM fleet WHERE id = 1', [])[0]!.epoch);
      return { version: this.versionNow(), epoch, targets, discovery: this.discoveryNow() };
    });
  }
  async fleetView(known: ReadonlyMap<string, number>, extra: readonly string[] = [], agents?: readonly string[], assignmentsSeen?: number): Promise<FleetView> {
    return this.tx(() => {
      // per scope, not the whole table: it holds a row per agent, and a hello's round must not read the fleet
      const change = (scope: string): number | undefined => {
        const r = this.db.all('SELECT version FROM changes WHERE scope = ?', [scope])[0];
        return r ? Number(r.version) : undefined;
      };
      const assignmentsVersion = this.assignmentsVersion();
      const unchanged = agents === undefined && assignmentsSeen === assignmentsVersion;
      const assignments = new Map<string, string[]>();
      const targetVersions = new Map<string, number>();
      const pairs = unchanged ? [] : agents === undefined
        ? this.db.all('SELECT agent_id, target FROM assignments ORDER BY agent_id, target', [])
        : agents.flatMap((id) => this.db.all('SELECT agent_id, target FROM assignments WHERE agent_id = ? ORDER BY target', [id]));
      for (const r of pairs) {
        const id = String(r.agent_id), t = String(r.target);
        let list = assignments.get(id);
        if (!list) assignments.set(id, (list = []));
        list.push(t);
        if (!targetVersions.has(t)) targetVersions.set(t, change(targetScope(t)) ?? -1);
      }
      for (const t of extra) targetVersions.set(t, change(targetScope(t)) ?? -1);
      const rows = new Map<string, AclRecord[]>();
      for (const [t, v] of targetVersions) {
        if (v !== -1 && known.get(t) === v) continue;
        rows.set(t, this.db.all('SELECT * FROM acls WHERE target = ? ORDER BY initiator', [t]).map(aclRow));
      }
      const epoch = String(this.db.all('SELECT epoch FROM fleet WHERE id = 1', [])[0]!.epoch);
      return { version: this.versionNow(), epoch, assignments: unchanged ? undefined : assignments, assignmentsVersion, targetVersions, rows, discovery: this.discoveryNow(), discoveryVersion: change(DISCOVERY_SCOPE) ?? 0 };
    });
  }
  async kdfSalt(): Promise<string> {
    return String(this.db.all('SELECT salt FROM kdf WHERE id = 1', [])[0]!.salt);
  }
  async desiredVersions(): Promise<Map<string, number>> {
    return this.tx(() => {
      const changes = new Map(this.db.all('SELECT scope, version FROM changes', []).map((r) => [String(r.scope), Number(r.version)] as const));
      const base = changes.get(DISCOVERY_SCOPE) ?? 0;
      const out = new Map<string, number>();
      for (const r of this.db.all('SELECT id FROM agents', [])) {
        const id = String(r.id);
        out.set(id, Math.max(base, changes.get(agentScope(id)) ?? 0));
      }
      for (const r of this.db.all('SELECT agent_id, target FROM assignments', [])) {
        const id = String(r.agent_id);
        out.set(id, Math.max(out.get(id) ?? 0, changes.get(targetScope(String(r.target))) ?? 0));
      }
      return out;
    });
  }
  async putMigration(id: string, record: string, running: boolean): Promise<void> {
    this.db.run('INSERT INTO migrations (id, record, running) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET record = excluded.record, running = excluded.running',
      [id, record, running ? 1 : 0]);
  }
  async getMigration(id: string): Promise<string | undefined> {
    const r = this.db.all('SELECT record FROM migrations WHERE id = ?', [id])[0];
    return r ? String(r.record) : undefined;
  }
  async runningMigrations(): Promise<string[]> {
    return this.db.all('SELECT record FROM migrations WHERE running = 1', []).map((r) => String(r.record));
  }
}
