// Loading saveconfig.json (rtslib-fb RTSRoot.restore): validate everything first, then return a private copy.
// Unknown keys are kept at every level; errors name the offending object in one line.
import { isIP } from 'node:net';
import { isValidIscsiName, sameIscsiName } from './names.js';
import { validateTunnels } from './tunnels.js';
import {
  PLUGINS, parseStorageObjectPath, storageObjectPath,
  type NodeAclConfig, type Plugin, type RootConfig, type StorageObjectConfig, type TpgConfig,
} from './schema.js';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function fail(msg: string): never {
  throw new ConfigError(msg);
}

function arr(v: unknown, where: string): unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) fail(`${where} must be a list`);
  return v;
}

function int(v: unknown, where: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(`${where}: ${JSON.stringify(v)} is not an integer in ${min}..${max}`);
  return v;
}

function str(v: unknown, where: string, allowEmpty = false): string {
  if (typeof v !== 'string' || (!allowEmpty && v.length === 0)) fail(`${where} must be a ${allowEmpty ? '' : 'non-empty '}string`);
  return v;
}

function optStr(o: Obj, key: string, where: string): void {
  if (o[key] !== undefined && typeof o[key] !== 'string') fail(`${where}.${key} must be a string`);
}

function optBool(o: Obj, key: string, where: string): void {
  if (o[key] !== undefined && typeof o[key] !== 'boolean') fail(`${where}.${key} must be true or false`);
}

function scalars(v: unknown, where: string): void {
  if (v === undefined) return;
  if (!isObj(v)) fail(`${where} must be an object`);
  for (const [k, x] of Object.entries(v)) {
    if (!['number', 'string', 'boolean'].includes(typeof x)) fail(`${where}.${k} must be a number, string or boolean`);
  }
}

/** CHAP secret lengths, as the gateway enforces them: RFC 7143 §12.1.3 wants at least 96 random bits. */
export const CHAP_SECRET_MIN = 12;
export const CHAP_SECRET_MAX = 255;

/**
 * The CHAP secrets of a TPG, an ACL or discovery (`prefix` + password / mutual_password): each empty (no
 * CHAP) or 12..255 characters, and the target's (mutual) secret not the initiator's — RFC 7143 §12.1.3:
 * a secret that authenticates an initiator MUST NOT authenticate a target.
 */
export function validateChapSecrets(o: Obj, prefix: string, where: string): void {
  for (const k of [`${prefix}password`, `${prefix}mutual_password`]) {
    const v = o[k];
    if (typeof v !== 'string' || v === '') continue;
    if (v.length < CHAP_SECRET_MIN || v.length > CHAP_SECRET_MAX) {
      fail(`${where}: ${k} must be ${CHAP_SECRET_MIN}..${CHAP_SECRET_MAX} characters (RFC 7143 §12.1.3), not ${v.length}`);
    }
  }
  const p = o[`${prefix}password`];
  if (typeof p === 'string' && p !== '' && p === o[`${prefix}mutual_password`]) {
    fail(`${where}: ${prefix}mutual_password must differ from ${prefix}password (the target's and the initiator's secrets must differ, RFC 7143 §12.1.3)`);
  }
}

export function validPortalIp(ip: string): boolean {
  const bare = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  return isIP(bare) !== 0;
}

const NAME_RE = /^[A-Za-z0-9_\-.:]+$/;

export function validateStorageObject(so: unknown, where: string): asserts so is StorageObjectConfig {
  if (!isObj(so)) fail(`${where} must be an object`);
  const plugin = so.plugin;
  if (typeof plugin !== 'string' || !(PLUGINS as readonly string[]).includes(plugin)) fail(`${where}: unsupported plugin ${JSON.stringify(plugin)} (fileio, block, rd_mcp, pscsi, object)`);
  const name = str(so.name, `${where}.name`);
  if (!NAME_RE.test(name)) fail(`${where}: storage object name '${name}' may only contain letters, digits, '_', '-', '.', ':'`);
  const w = `storage object ${plugin}/${name}`;
  optStr(so, 'wwn', w);
  scalars(so.attributes, `${w}.attributes`);
  if (so.size !== undefined) int(so.size, `${w}: size`, 1);
  if (isObj(so.attributes) && so.attributes.block_size !== undefined) {
    const bs = so.attributes.block_size;
    if (typeof bs !== 'number' || ![512, 1024, 2048, 4096].includes(bs)) fail(`${w}: block_size ${JSON.stringify(bs)} must be 512, 1024, 2048 or 4096`);
  }
  for (const [i, g] of arr(so.alua_tpgs, `${w}.alua_tpgs`).entries()) {
    if (!isObj(g)) fail(`${w}.alua_tpgs[${i}] must be an object`);
    str(g.name, `${w}.alua_tpgs[${i}].name`);
    int(g.tg_pt_gp_id, `${w}.alua_tpgs[${i}].tg_pt_gp_id`, 0, 65535);
  }
  switch (plugin as Plugin) {
    case 'fileio':
      str(so.dev, `${w}: dev`);
      optBool(so, 'write_back', w);
      if (so.size === undefined) fail(`${w}: size is required`);
      break;
    case 'block':
      str(so.dev, `${w}: dev`);
      optBool(so, 'readonly', w);
      optBool(so, 'write_back', w);
      break;
    case 'rd_mcp':
      if (so.size === undefined) fail(`${w}: size is required`);
      optBool(so, 'nullio', w);
      break;
    case 'pscsi':
      str(so.dev, `${w}: dev`);
      break;
    case 'object':
      str(so.bucket, `${w}: bucket`);
      if (so.size === undefined) fail(`${w}: size is required`);
      for (const k of ['prefix', 'endpoint', 'region', 'cache_dir', 'source']) optStr(so, k, w);
      optBool(so, 'force_path_style', w);
      optBool(so, 'readonly', w);
      if (so.readonly === true && so.source === undefined) fail(`${w}: readonly exports a snapshot: source (prefix@snapshot) is required`);
      if (so.cache_size !== undefined) int(so.cache_size, `${w}: cache_size`, 1);
      break;
  }
}

function validateTpg(tpg: unknown, where: string, sos: Set<string>): asserts tpg is TpgConfig {
  if (!isObj(tpg)) fail(`${where} must be an object`);
  int(tpg.tag, `${where}: tag`, 1, 65535);
  optBool(tpg, 'enable', where);
  scalars(tpg.attributes, `${where}.attributes`);
  if (tpg.parameters !== undefined) {
    if (!isObj(tpg.parameters)) fail(`${where}.parameters must be an object`);
    for (const [k, v] of Object.entries(tpg.parameters)) if (typeof v !== 'string') fail(`${where}.parameters.${k} must be a string`);
  }
  for (const k of ['chap_userid', 'chap_password', 'chap_mutual_userid', 'chap_mutual_password']) optStr(tpg, k, where);
  validateChapSecrets(tpg, 'chap_', where);
  const lunIdx = new Set<number>();
  for (const [i, lun] of arr(tpg.luns, `${where}.luns`).entries()) {
    if (!isObj(lun)) fail(`${where}.luns[${i}] must be an object`);
    const idx = int(lun.index, `${where} LUN index`, 0, 65535);
    if (lunIdx.has(idx)) fail(`${where}: duplicate LUN ${idx}`);
    lunIdx.add(idx);
    const path = str(lun.storage_object, `${where} lun${idx}.storage_object`);
    const parsed = parseStorageObjectPath(path);
    if (!parsed || !sos.has(storageObjectPath(parsed))) fail(`${where} lun${idx}: storage object ${path} does not exist`);
    lun.storage_object = storageObjectPath(parsed); // "/backstores/rd_mcp/x" normalizes to ramdisk
    optStr(lun, 'alua_tg_pt_gp_name', `${where} lun${idx}`);
  }
  const acls: string[] = [];
  for (const [i, acl] of arr(tpg.node_acls, `${where}.node_acls`).entries()) {
    if (!isObj(acl)) fail(`${where}.node_acls[${i}] must be an object`);
    const wwn = str(acl.node_wwn, `${where}.node_acls[${i}].node_wwn`);
    if (!isValidIscsiName(wwn)) fail(`${where}: '${wwn}' is not a valid iSCSI initiator name (iqn., eui. or naa.)`);
    if (acls.some((a) => sameIscsiName(a, wwn)) && !acl.outpost_managed) fail(`${where}: duplicate node ACL ${wwn}`);
    acls.push(wwn);
    validateAcl(acl, `${where} ACL ${wwn}`, lunIdx);
  }
  const portals = new Set<string>();
  for (const [i, p] of arr(tpg.portals, `${where}.portals`).entries()) {
    if (!isObj(p)) fail(`${where}.portals[${i}] must be an object`);
    const ip = str(p.ip_address, `${where}.portals[${i}].ip_address`);
    if (!validPortalIp(ip)) fail(`${where}: '${ip}' is not an IP address`);
    const port = int(p.port, `${where} portal ${ip} port`, 1, 65535);
    const key = `${ip}:${port}`;
    if (portals.has(key)) fail(`${where}: duplicate portal ${key}`);
    portals.add(key);
  }
  if (tpg.outpost_tunnels !== undefined) validateTunnels(tpg.outpost_tunnels, where);
}

function validateAcl(acl: Obj, where: string, tpgLuns: Set<number>): asserts acl is NodeAclConfig {
  for (const k of ['chap_userid', 'chap_password', 'chap_mutual_userid', 'chap_mutual_password']) optStr(acl, k, where);
  if (!acl.outpost_managed) validateChapSecrets(acl, 'chap_', where); // the gateway checked its own
  scalars(acl.attributes, `${where}.attributes`);
  const seen = new Set<number>();
  for (const [i, m] of arr(acl.mapped_luns, `${where}.mapped_luns`).entries()) {
    if (!isObj(m)) fail(`${where}.mapped_luns[${i}] must be an object`);
    const idx = int(m.index, `${where} mapped LUN index`, 0, 65535);
    if (seen.has(idx)) fail(`${where}: duplicate mapped LUN ${idx}`);
    seen.add(idx);
    const tl = int(m.tpg_lun, `${where} mapped_lun${idx}.tpg_lun`, 0, 65535);
    if (!acl.outpost_managed && !tpgLuns.has(tl)) fail(`${where} mapped_lun${idx}: TPG LUN ${tl} does not exist`);
    optBool(m, 'write_protect', `${where} mapped_lun${idx}`);
  }
}

/** Validates a saveconfig.json document and returns a normalized private copy. Throws ConfigError. */
export function loadConfig(doc: unknown): RootConfig {
  if (!isObj(doc)) fail('configuration must be a JSON object');
  const root = structuredClone(doc) as Obj;
  const sos = new Set<string>();
  for (const [i, so] of arr(root.storage_objects, 'storage_objects').entries()) {
    validateStorageObject(so, `storage_objects[${i}]`);
    const path = storageObjectPath(so);
    if (sos.has(path)) fail(`duplicate storage object ${so.plugin}/${so.name}`);
    sos.add(path);
  }
  const wwns: string[] = [];
  for (const [i, t] of arr(root.targets, 'targets').entries()) {
    if (!isObj(t)) fail(`targets[${i}] must be an object`);
    const fabric = t.fabric ?? 'iscsi';
    if (typeof fabric !== 'string') fail(`targets[${i}].fabric must be a string`);
    t.fabric = fabric;
    const wwn = str(t.wwn, `targets[${i}].wwn`);
    if (fabric === 'iscsi' && !isValidIscsiName(wwn)) fail(`target '${wwn}' is not a valid iSCSI name (iqn., eui. or naa.)`);
    if (wwns.some((w) => sameIscsiName(w, wwn))) fail(`duplicate target ${wwn}`);
    wwns.push(wwn);
    const tags = new Set<number>();
    for (const [j, tpg] of arr(t.tpgs, `target ${wwn} tpgs`).entries()) {
      validateTpg(tpg, `target ${wwn} tpg${isObj(tpg) ? String(tpg.tag) : j}`, sos);
      if (tags.has(tpg.tag)) fail(`target ${wwn}: duplicate TPG ${tpg.tag}`);
      tags.add(tpg.tag);
    }
  }
  for (const [i, f] of arr(root.fabric_modules, 'fabric_modules').entries()) {
    if (!isObj(f)) fail(`fabric_modules[${i}] must be an object`);
    str(f.name, `fabric_modules[${i}].name`);
    optBool(f, 'discovery_enable_auth', `fabric module ${String(f.name)}`);
    for (const k of ['discovery_userid', 'discovery_password', 'discovery_mutual_userid', 'discovery_mutual_password']) optStr(f, k, `fabric module ${String(f.name)}`);
    validateChapSecrets(f, 'discovery_', `fabric module ${String(f.name)} discovery_auth`);
  }
  return normalize(root);
}

/** Fills the structural members code relies on (rtslib writes them all, so a targetcli file already has them). */
function normalize(root: Obj): RootConfig {
  const r = root as unknown as RootConfig;
  r.storage_objects ??= [];
  r.targets ??= [];
  r.fabric_modules ??= [];
  for (const t of r.targets) {
    t.tpgs ??= [];
    for (const tpg of t.tpgs) {
      tpg.enable ??= true;
      tpg.attributes ??= {};
      tpg.parameters ??= {};
      tpg.luns ??= [];
      tpg.node_acls ??= [];
      tpg.portals ??= [];
      for (const acl of tpg.node_acls) {
        acl.mapped_luns ??= [];
        for (const m of acl.mapped_luns) m.write_protect ??= false;
      }
    }
  }
  return r;
}
