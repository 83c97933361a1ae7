// Request validation: iSCSI names (RFC 3720 §3.2.6.3), CHAP secrets (RFC 7143 §12.1.3; Windows caps at 16),
// ACL and discovery-auth bodies. Every failure is a 400 with a message naming the field.
import type { ChapPolicy, DiscoveryAuthPolicy, MappedLunPolicy } from '../shared/policy.js';
import { badRequest } from './errors.js';

const IQN = /^iqn\.\d{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[a-z0-9.:_-]+)?$/;
const EUI = /^eui\.[0-9A-Fa-f]{16}$/;
const NAA = /^naa\.([0-9A-Fa-f]{16}|[0-9A-Fa-f]{32})$/;

export const SECRET_MIN = 12;
export const SECRET_MAX = 255;
export const WINDOWS_SECRET_MAX = 16;

export function isIscsiName(name: string): boolean {
  // 223 bytes is the RFC's limit for an iSCSI name.
  return name.length <= 223 && (IQN.test(name) || EUI.test(name) || NAA.test(name));
}

export function checkIscsiName(name: string, field: string): string {
  if (!isIscsiName(name)) throw badRequest(`${field} ${JSON.stringify(name.slice(0, 240))} is not a valid iSCSI name (iqn.YYYY-MM.reversed.domain[:id], eui.<16 hex>, or naa.<16|32 hex>)`);
  return name;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Unknown fields are refused, not dropped: a typo ("chapp") must not store an ACL without CHAP. */
function onlyKnown(v: Record<string, unknown>, known: readonly string[], where: string): void {
  const unknown = Object.keys(v).filter((k) => !known.includes(k));
  if (unknown.length === 0) return;
  const names = unknown.map((k) => JSON.stringify(where ? `${where}.${k}` : k)).join(', ');
  throw badRequest(`unknown field${unknown.length > 1 ? 's' : ''} ${names} (${known.length > 0 ? `known: ${known.join(', ')}` : 'this request takes no fields'})`);
}

const CREDENTIAL_FIELDS = ['userid', 'password', 'mutual_userid', 'mutual_password'] as const;

function userid(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 255 || !/^[\x21-\x7e]+$/.test(v)) throw badRequest(`${field} must be 1..255 printable characters without spaces`);
  return v;
}

function secret(v: unknown, field: string, warnings: string[]): string {
  if (typeof v !== 'string') throw badRequest(`${field} must be a string`);
  if (v.length < SECRET_MIN || v.length > SECRET_MAX) throw badRequest(`${field} must be ${SECRET_MIN}..${SECRET_MAX} characters`);
  if (!/^[\x20-\x7e]+$/.test(v)) throw badRequest(`${field} must be printable ASCII`);
  if (v.length > WINDOWS_SECRET_MAX) warnings.push(`${field} is longer than ${WINDOWS_SECRET_MAX} characters; Windows initiators will not accept it`);
  return v;
}

interface Credentials { userid: string; password: string; mutual_userid?: string; mutual_password?: string }

function credentials(v: Record<string, unknown>, prefix: string, warnings: string[]): Credentials {
  const out: Credentials = { userid: userid(v.userid, `${prefix}.userid`), password: secret(v.password, `${prefix}.password`, warnings) };
  const hasMu = v.mutual_userid !== undefined && v.mutual_userid !== null;
  const hasMp = v.mutual_password !== undefined && v.mutual_password !== null;
  if (hasMu !== hasMp) throw badRequest(`${prefix}.mutual_userid and ${prefix}.mutual_password go together`);
  if (hasMu) {
    out.mutual_userid = userid(v.mutual_userid, `${prefix}.mutual_userid`);
    out.mutual_password = secret(v.mutual_password, `${prefix}.mutual_password`, warnings);
    if (out.mutual_password === out.password) throw badRequest(`${prefix}.mutual_password must differ from ${prefix}.password (the initiator's and the target's secrets must differ)`);
  }
  return out;
}

export interface AclBody { chap?: ChapPolicy; mapped_luns: MappedLunPolicy[] }

export function parseAclBody(body: unknown, warnings: string[]): AclBody {
  if (!isObject(body)) throw badRequest('body must be a JSON object');
  onlyKnown(body, ['chap', 'mapped_luns'], '');
  let chap: ChapPolicy | undefined;
  if (body.chap !== undefined && body.chap !== null) {
    if (!isObject(body.chap)) throw badRequest('chap must be an object');
    onlyKnown(body.chap, CREDENTIAL_FIELDS, 'chap');
    chap = credentials(body.chap, 'chap', warnings);
  }
  const luns = body.mapped_luns ?? [];
  if (!Array.isArray(luns)) throw badRequest('mapped_luns must be an array');
  if (luns.length > 256) throw badRequest('mapped_luns has more than 256 entries');
  const seen = new Set<number>();
  const mapped_luns = luns.map((l: unknown, i: number): MappedLunPolicy => {
    if (!isObject(l)) throw badRequest(`mapped_luns[${i}] must be an object`);
    onlyKnown(l, ['index', 'tpg_lun', 'write_protect'], `mapped_luns[${i}]`);
    const idx = l.index, tpg = l.tpg_lun, wp = l.write_protect ?? false;
    if (!Number.isInteger(idx) || (idx as number) < 0 || (idx as number) > 16383) throw badRequest(`mapped_luns[${i}].index must be an integer 0..16383`);
    if (!Number.isInteger(tpg) || (tpg as number) < 0 || (tpg as number) > 16383) throw badRequest(`mapped_luns[${i}].tpg_lun must be an integer 0..16383`);
    if (typeof wp !== 'boolean') throw badRequest(`mapped_luns[${i}].write_protect must be a boolean`);
    if (seen.has(idx as number)) throw badRequest(`mapped_luns[${i}].index ${idx} is mapped twice`);
    seen.add(idx as number);
    return { index: idx as number, tpg_lun: tpg as number, write_protect: wp };
  });
  return chap ? { chap, mapped_luns } : { mapped_luns };
}

export function parseDiscoveryAuthBody(body: unknown, warnings: string[]): DiscoveryAuthPolicy {
  if (!isObject(body)) throw badRequest('body must be a JSON object');
  onlyKnown(body, ['enable', ...CREDENTIAL_FIELDS], '');
  if (typeof body.enable !== 'boolean') throw badRequest('enable must be a boolean');
  if (!body.enable && body.password === undefined) return { enable: false, userid: '', password: '' };
  return { enable: body.enable, ...credentials(body, 'discovery_auth', warnings) };
}

export function parseAgentBody(body: unknown): { name: string } {
  if (!isObject(body)) throw badRequest('body must be a JSON object');
  onlyKnown(body, ['name'], '');
  const name = body.name;
  if (typeof name !== 'string' || name.length === 0 || name.length > 128 || !/^[\x20-\x7e]+$/.test(name)) throw badRequest('name must be 1..128 printable characters');
  return { name };
}

/** PUT /v1/agents/{id}/targets/{iqn} takes no body, or an empty object. */
export function parseAssignBody(body: unknown): void {
  if (body === undefined) return;
  if (!isObject(body)) throw badRequest('body must be empty or a JSON object');
  onlyKnown(body, [], '');
}
