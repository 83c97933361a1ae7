// iSCSI names (RFC 3720 §3.2.6.3): iqn. / eui. / naa. formats, as LIO/rtslib accept them.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';

const IQN = /^iqn\.\d{4}-(0[1-9]|1[0-2])\.[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[\x21-\x7e]*)?$/i;
const EUI = /^eui\.[0-9a-f]{16}$/i;
const NAA = /^naa\.([0-9a-f]{16}|[0-9a-f]{32})$/i;

/** true when `name` is a well-formed iSCSI node name (at most 223 bytes, RFC 3720 §3.2.6.1). */
export function isValidIscsiName(name: string): boolean {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > 223) return false;
  return IQN.test(name) || EUI.test(name) || NAA.test(name);
}

/** rtslib normalizes names to lower case (iSCSI names are case-insensitive). */
export function normalizeIscsiName(name: string): string {
  return name.toLowerCase();
}

export function sameIscsiName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** A fresh target IQN, like LIO's iqn.2003-01.org.linux-iscsi.<host>.<arch>:sn.<hex>. */
export function generateTargetIqn(host = hostname()): string {
  const h = host.toLowerCase().replace(/[^a-z0-9-.]/g, '-').replace(/^[-.]+|[-.]+$/g, '').replace(/\.{2,}/g, '.') || 'localhost';
  return `iqn.2003-01.org.outpost.${h}:sn.${randomBytes(6).toString('hex')}`;
}
