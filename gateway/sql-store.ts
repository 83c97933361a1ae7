// Store on any synchronous SQLite driver: better-sqlite3 on Node, ctx.storage.sql in a Durable Object.
import type { AclRecord, AgentPatch, AgentRecord, DiscoveryAuthRecord, Store } from './store.js';

export type SqlValue = string | number | null;

/** The two calls the store needs; `run` for statements without rows. */
export interface SqlDriver {
  all(sql: string, params: readonly SqlValue[]): Record<string, SqlValue>[];
  run(sql: string, params: readonly SqlValue[]): void;
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
];

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
  constructor(private readonly db: SqlDriver) {
    for (const s of SCHEMA) db.run(s, []);
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
  async findAgentByTokenHash(hash: string): Promise<AgentRecord | undefined> {
    const r = this.db.all('SELECT * FROM agents WHERE token_hash = ?', [hash])[0];
    return r && agentRow(r);
  }
  async updateAgent(id: string, patch: AgentPatch): Promise<void> {
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
    const had = this.db.all('SELECT id FROM agents WHERE id = ?', [id]).length > 0;
    this.db.run('DELETE FROM agents WHERE id = ?', [id]);
    return had;
  }

  async putAcl(a: AclRecord): Promise<void> {
    this.db.run('INSERT OR IGNORE INTO targets (target) VALUES (?)', [a.target]);
    this.db.run(
      `INSERT INTO acls (target, initiator, chap_info, chap_sealed, mapped_luns, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (target, initiator) DO UPDATE SET chap_info = excluded.chap_info, chap_sealed = excluded.chap_sealed,
       mapped_luns = excluded.mapped_luns, updated_at = excluded.updated_at`,
      [a.target, a.initiator, a.chap_info && JSON.stringify(a.chap_info), a.chap_sealed, JSON.stringify(a.mapped_luns), a.updated_at],
    );
  }
  async deleteAcl(target: string, initiator: string): Promise<boolean> {
    const had = this.db.all('SELECT 1 AS x FROM acls WHERE target = ? AND initiator = ?', [target, initiator]).length > 0;
    this.db.run('DELETE FROM acls WHERE target = ? AND initiator = ?', [target, initiator]);
    return had;
  }
  async listAcls(target: string): Promise<AclRecord[]> {
    return this.db.all('SELECT * FROM acls WHERE target = ? ORDER BY initiator', [target]).map(aclRow);
  }
  async knownTargets(targets: readonly string[]): Promise<string[]> {
    if (targets.length === 0) return [];
    const known = new Set(this.db.all('SELECT target FROM targets', []).map((r) => String(r.target)));
    return targets.filter((t) => known.has(t));
  }

  async getDiscoveryAuth(): Promise<DiscoveryAuthRecord | undefined> {
    const r = this.db.all('SELECT * FROM discovery_auth WHERE id = 1', [])[0];
    if (!r) return undefined;
    return { enable: r.enable === 1, info: r.info === null ? null : json(r.info), sealed: r.sealed === null ? null : String(r.sealed), updated_at: String(r.updated_at) };
  }
  async putDiscoveryAuth(d: DiscoveryAuthRecord): Promise<void> {
    this.db.run(
      `INSERT INTO discovery_auth (id, enable, info, sealed, updated_at) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET enable = excluded.enable, info = excluded.info, sealed = excluded.sealed, updated_at = excluded.updated_at`,
      [d.enable ? 1 : 0, d.info && JSON.stringify(d.info), d.sealed, d.updated_at],
    );
  }

  async policyVersion(): Promise<number> {
    const r = this.db.all("SELECT value FROM meta WHERE key = 'policy_version'", [])[0];
    return r ? Number(r.value) : 0;
  }
  async bumpPolicyVersion(): Promise<number> {
    this.db.run("INSERT INTO meta (key, value) VALUES ('policy_version', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1", []);
    return this.policyVersion();
  }
}
