// Gateway policy → managed node ACLs (DESIGN "Control plane"): validated in full, then swapped in at once.
// Each target IQN's ACL list becomes managed node ACLs on every TPG of that target; a managed ACL
// shadows a local ACL for the same initiator (the gateway is authoritative for what it manages).
import type { AclPolicy, PolicySnapshot } from '../../shared/policy.js';
import { isValidIscsiName, sameIscsiName } from './names.js';
import type { NodeAclConfig, RootConfig, TpgConfig } from './schema.js';

function bad(msg: string): never {
  throw new Error(`invalid policy: ${msg}`);
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function chapOk(c: unknown, where: string): void {
  if (!isObj(c)) bad(`${where}: chap must be an object`);
  if (typeof c.userid !== 'string' || c.userid === '') bad(`${where}: chap.userid must be a non-empty string`);
  if (typeof c.password !== 'string' || c.password === '') bad(`${where}: chap.password must be a non-empty string`);
  const mu = c.mutual_userid;
  const mp = c.mutual_password;
  if (mu !== undefined && typeof mu !== 'string') bad(`${where}: chap.mutual_userid must be a string`);
  if (mp !== undefined && typeof mp !== 'string') bad(`${where}: chap.mutual_password must be a string`);
  if (Boolean(mu) !== Boolean(mp)) bad(`${where}: mutual CHAP needs both mutual_userid and mutual_password`);
}

/** Throws an Error naming the first problem; returns normally when the snapshot can be applied. */
export function validatePolicy(p: unknown): asserts p is PolicySnapshot {
  if (!isObj(p)) bad('snapshot must be an object');
  if (typeof p.version !== 'number' || !Number.isSafeInteger(p.version) || p.version < 0) bad('version must be a non-negative integer');
  if (!isObj(p.targets)) bad('targets must be an object keyed by target IQN');
  for (const [target, acls] of Object.entries(p.targets)) {
    if (!isValidIscsiName(target)) bad(`'${target}' is not a valid iSCSI target name`);
    if (!Array.isArray(acls)) bad(`${target}: ACL list must be an array`);
    const seen: string[] = [];
    for (const a of acls as unknown[]) {
      if (!isObj(a)) bad(`${target}: each ACL must be an object`);
      const ini = a.initiator;
      if (typeof ini !== 'string' || !isValidIscsiName(ini)) bad(`${target}: '${String(ini)}' is not a valid iSCSI initiator name`);
      if (seen.some((s) => sameIscsiName(s, ini))) bad(`${target}: duplicate ACL for ${ini}`);
      seen.push(ini);
      if (a.chap !== undefined) chapOk(a.chap, `${target} ACL ${ini}`);
      if (!Array.isArray(a.mapped_luns)) bad(`${target} ACL ${ini}: mapped_luns must be an array`);
      const idx = new Set<number>();
      for (const m of a.mapped_luns as unknown[]) {
        if (!isObj(m)) bad(`${target} ACL ${ini}: each mapped LUN must be an object`);
        for (const k of ['index', 'tpg_lun'] as const) {
          const v = m[k];
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 65535) bad(`${target} ACL ${ini}: mapped LUN ${k} ${JSON.stringify(v)} is not an integer in 0..65535`);
        }
        if (typeof m.write_protect !== 'boolean') bad(`${target} ACL ${ini}: mapped LUN write_protect must be true or false`);
        if (idx.has(m.index as number)) bad(`${target} ACL ${ini}: duplicate mapped LUN ${String(m.index)}`);
        idx.add(m.index as number);
      }
    }
  }
  if (p.discovery_auth !== undefined) {
    const d = p.discovery_auth;
    if (!isObj(d)) bad('discovery_auth must be an object');
    if (typeof d.enable !== 'boolean') bad('discovery_auth.enable must be true or false');
    for (const k of ['userid', 'password', 'mutual_userid', 'mutual_password']) {
      if (d[k] !== undefined && typeof d[k] !== 'string') bad(`discovery_auth.${k} must be a string`);
    }
    if (d.enable && (!d.userid || !d.password)) bad('discovery_auth enabled without userid and password');
  }
}

function managedAcl(a: AclPolicy): NodeAclConfig {
  return {
    node_wwn: a.initiator,
    chap_userid: a.chap?.userid ?? '',
    chap_password: a.chap?.password ?? '',
    chap_mutual_userid: a.chap?.mutual_userid ?? '',
    chap_mutual_password: a.chap?.mutual_password ?? '',
    mapped_luns: a.mapped_luns.map((m) => ({ index: m.index, tpg_lun: m.tpg_lun, write_protect: m.write_protect })),
    outpost_managed: true,
  };
}

/** Replaces every managed ACL in `root` (in place) with those of `policy` (none when undefined). */
export function applyManagedAcls(root: RootConfig, policy: PolicySnapshot | undefined): void {
  for (const t of root.targets) {
    if (t.fabric !== 'iscsi') continue;
    const entry = policy ? Object.entries(policy.targets).find(([iqn]) => sameIscsiName(iqn, t.wwn)) : undefined;
    for (const tpg of t.tpgs) {
      tpg.node_acls = tpg.node_acls.filter((a) => !a.outpost_managed);
      if (entry) tpg.node_acls.push(...entry[1].map(managedAcl));
    }
  }
}

/** The ACLs in effect on a TPG: managed ones shadow local ones for the same initiator. */
export function effectiveAcls(tpg: TpgConfig): NodeAclConfig[] {
  const managed = tpg.node_acls.filter((a) => a.outpost_managed);
  return tpg.node_acls.filter((a) => a.outpost_managed || !managed.some((m) => sameIscsiName(m.node_wwn, a.node_wwn)));
}
