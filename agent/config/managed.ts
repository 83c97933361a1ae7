// Gateway policy → managed node ACLs (DESIGN "Control plane"): validated in full, then swapped in at once.
// Each target IQN's ACL list becomes managed node ACLs on every TPG of that target; a managed ACL
// shadows a local ACL for the same initiator (the gateway is authoritative for what it manages).
// Everything here is linear in the size of the policy (Maps and Sets keyed by lower-cased names: iSCSI
// names are case-insensitive), and counts are capped (POLICY_LIMITS) so a hostile gateway cannot make
// the agent do unbounded work; validatePolicyAsync yields to the event loop every few milliseconds.
import { POLICY_LIMITS, type AclPolicy, type PolicySnapshot } from '../../shared/policy.js';
import { isValidIscsiName } from './names.js';
import { iscsiTargets, type NodeAclConfig, type RootConfig, type TpgConfig } from './schema.js';

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

function aclOk(target: string, a: unknown, seen: Set<string>): void {
  if (!isObj(a)) bad(`${target}: each ACL must be an object`);
  const ini = a.initiator;
  if (typeof ini !== 'string' || !isValidIscsiName(ini)) bad(`${target}: '${String(ini).slice(0, 240)}' is not a valid iSCSI initiator name`);
  const key = ini.toLowerCase();
  if (seen.has(key)) bad(`${target}: duplicate ACL for ${ini}`);
  seen.add(key);
  if (a.chap !== undefined) chapOk(a.chap, `${target} ACL ${ini}`);
  if (!Array.isArray(a.mapped_luns)) bad(`${target} ACL ${ini}: mapped_luns must be an array`);
  if (a.mapped_luns.length > POLICY_LIMITS.lunsPerAcl) bad(`${target} ACL ${ini}: ${a.mapped_luns.length} mapped LUNs, more than the ${POLICY_LIMITS.lunsPerAcl} allowed`);
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

/** The checks as steps: each `yield` is a point where the async validator may give the event loop back. */
function* checks(p: unknown): Generator<void, void, void> {
  if (!isObj(p)) bad('snapshot must be an object');
  if (typeof p.version !== 'number' || !Number.isSafeInteger(p.version) || p.version < 0) bad('version must be a non-negative integer');
  if (p.fleet_epoch !== undefined && typeof p.fleet_epoch !== 'string') bad('fleet_epoch must be a string');
  if (!isObj(p.targets)) bad('targets must be an object keyed by target IQN');
  const entries = Object.entries(p.targets);
  // counts first, so an oversized snapshot is refused before any per-ACL work
  if (entries.length > POLICY_LIMITS.targets) bad(`${entries.length} targets, more than the ${POLICY_LIMITS.targets} allowed`);
  let total = 0;
  for (const [target, acls] of entries) {
    if (!Array.isArray(acls)) bad(`${target}: ACL list must be an array`);
    if (acls.length > POLICY_LIMITS.aclsPerTarget) bad(`${target}: ${acls.length} ACLs, more than the ${POLICY_LIMITS.aclsPerTarget} allowed per target`);
    total += acls.length;
  }
  if (total > POLICY_LIMITS.aclsTotal) bad(`${total} ACLs in all, more than the ${POLICY_LIMITS.aclsTotal} allowed`);
  const targetKeys = new Set<string>();
  for (const [target, acls] of entries) {
    if (!isValidIscsiName(target)) bad(`'${target.slice(0, 240)}' is not a valid iSCSI target name`);
    if (targetKeys.has(target.toLowerCase())) bad(`target ${target} appears twice`);
    targetKeys.add(target.toLowerCase());
    const seen = new Set<string>();
    for (const a of acls as unknown[]) {
      aclOk(target, a, seen);
      yield;
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

/** Snapshots already validated (by either validator): validating again costs nothing. */
const validated = new WeakSet<object>();

/** Throws an Error naming the first problem; returns normally when the snapshot can be applied. */
export function validatePolicy(p: unknown): asserts p is PolicySnapshot {
  if (typeof p === 'object' && p !== null && validated.has(p)) return;
  for (const _ of checks(p)) {
    // run to completion
  }
  validated.add(p as object);
}

/** validatePolicy without holding the event loop for more than about `sliceMs` at a time. */
export async function validatePolicyAsync(p: unknown, sliceMs = 4): Promise<void> {
  if (typeof p === 'object' && p !== null && validated.has(p)) return;
  let t0 = performance.now();
  let n = 0;
  for (const _ of checks(p)) {
    if ((++n & 63) === 0 && performance.now() - t0 > sliceMs) {
      await new Promise<void>((r) => setImmediate(r));
      t0 = performance.now();
    }
  }
  validated.add(p as object);
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
  const byTarget = new Map<string, readonly AclPolicy[]>();
  if (policy) for (const [iqn, acls] of Object.entries(policy.targets)) byTarget.set(iqn.toLowerCase(), acls);
  for (const t of root.targets) {
    if (t.fabric !== 'iscsi') continue;
    const acls = byTarget.get(t.wwn.toLowerCase());
    for (const tpg of t.tpgs) {
      tpg.node_acls = tpg.node_acls.filter((a) => !a.outpost_managed);
      if (acls) tpg.node_acls.push(...acls.map(managedAcl));
    }
  }
}

/** The ACLs in effect on a TPG: managed ones shadow local ones for the same initiator. */
export function effectiveAcls(tpg: TpgConfig): NodeAclConfig[] {
  let managed: Set<string> | undefined;
  for (const a of tpg.node_acls) if (a.outpost_managed) (managed ??= new Set()).add(a.node_wwn.toLowerCase());
  if (!managed) return tpg.node_acls.slice();
  const m = managed;
  return tpg.node_acls.filter((a) => a.outpost_managed || !m.has(a.node_wwn.toLowerCase()));
}

/** What an initiator proves itself with: a change of any of it must end the sessions it opened before. */
const sameCredentials = (a: NodeAclConfig, b: NodeAclConfig): boolean =>
  (a.chap_userid ?? '') === (b.chap_userid ?? '') && (a.chap_password ?? '') === (b.chap_password ?? '')
  && (a.chap_mutual_userid ?? '') === (b.chap_mutual_userid ?? '') && (a.chap_mutual_password ?? '') === (b.chap_mutual_password ?? '');

/** Effective ACLs by lower-cased "target\ninitiator". */
function effectiveByPair(root: RootConfig): Map<string, NodeAclConfig> {
  const out = new Map<string, NodeAclConfig>();
  for (const t of iscsiTargets(root)) {
    const target = t.wwn.toLowerCase() + '\n';
    for (const tpg of t.tpgs) for (const a of effectiveAcls(tpg)) out.set(target + a.node_wwn.toLowerCase(), a);
  }
  return out;
}

/**
 * (target, initiator) pairs, lower-cased, whose sessions must end going from `before` to `after`: the
 * ACL is gone, or its CHAP credentials (either direction) changed — as AWS Storage Gateway drops an
 * initiator's sessions when its CHAP secret changes.
 */
export function revokedAcls(before: RootConfig, after: RootConfig): Array<[target: string, initiator: string]> {
  const now = effectiveByPair(after);
  const out: Array<[string, string]> = [];
  for (const [pair, a] of effectiveByPair(before)) {
    const b = now.get(pair);
    if (b && sameCredentials(a, b)) continue;
    const [target, initiator] = pair.split('\n') as [string, string];
    out.push([target, initiator]);
  }
  return out;
}

/** What the agent tells the gateway about its targets: TPG LUN numbers and local (non-managed) ACLs. */
export function inventoryOf(root: RootConfig): Record<string, { tpg_luns: number[]; local_acls: string[] }> {
  const out: Record<string, { tpg_luns: number[]; local_acls: string[] }> = {};
  for (const t of iscsiTargets(root)) {
    const luns = new Set<number>();
    const local = new Set<string>();
    for (const tpg of t.tpgs) {
      for (const l of tpg.luns) luns.add(l.index);
      for (const a of tpg.node_acls) if (!a.outpost_managed) local.add(a.node_wwn.toLowerCase());
    }
    out[t.wwn] = { tpg_luns: [...luns].sort((a, b) => a - b), local_acls: [...local].sort() };
  }
  return out;
}

/**
 * Refuses a policy whose mapped LUNs point at TPG LUNs that the agent's TPGs of that target lack (the
 * ACL would show a broken link and admit the initiator to nothing). Targets the agent does not serve
 * (yet) are not checked: their policy applies when the target is created.
 */
export function checkPolicyFits(root: RootConfig, p: PolicySnapshot): void {
  const byTarget = new Map<string, Set<number>>();
  for (const t of iscsiTargets(root)) {
    const luns = byTarget.get(t.wwn.toLowerCase()) ?? new Set<number>();
    for (const tpg of t.tpgs) for (const l of tpg.luns) luns.add(l.index);
    byTarget.set(t.wwn.toLowerCase(), luns);
  }
  for (const [target, acls] of Object.entries(p.targets)) {
    const have = byTarget.get(target.toLowerCase());
    if (!have) continue;
    for (const a of acls) for (const m of a.mapped_luns) {
      if (!have.has(m.tpg_lun)) bad(`${target} ACL ${a.initiator}: mapped LUN ${m.index} refers to TPG LUN ${m.tpg_lun}, which ${target} does not have`);
    }
  }
}

/** A deep copy of `root` without its managed ACLs (the next policy replaces them; copying them is waste). */
export function cloneWithoutManaged(root: RootConfig): RootConfig {
  return structuredClone({
    ...root,
    targets: root.targets.map((t) => ({ ...t, tpgs: t.tpgs.map((g) => ({ ...g, node_acls: g.node_acls.filter((a) => !a.outpost_managed) })) })),
  });
}
