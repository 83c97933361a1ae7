// RFC 7143 §12.3 / Appendix C: SendTargets — the targets an initiator may reach and their portals.
import { isIPv6 } from 'node:net';
import type { KeyValue } from './text/codec.js';
import type { PortalAddress, TargetRegistry, TargetView, TpgView } from './target-registry.js';

/** Whether `initiatorName` may use this TPG: explicit ACL, or generate_node_acls (LIO demo mode). */
export function tpgAdmits(tpg: TpgView, initiatorName: string): boolean {
  return tpg.enabled && (tpg.acl(initiatorName) !== undefined || tpg.generateNodeAcls);
}

export function isWildcard(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::' || ip === '';
}

/** Strips the IPv4-mapped prefix so "::ffff:127.0.0.1" compares and prints as "127.0.0.1". */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip.toLowerCase();
}

export function formatAddress(ip: string, port: number, tpgt: number): string {
  const host = isIPv6(ip) ? `[${ip}]` : ip;
  return `${host}:${port},${tpgt}`;
}

/** A portal matches the address a connection arrived on when ports agree and its IP is the same or a wildcard. */
export function portalMatches(portal: PortalAddress, local: PortalAddress): boolean {
  if (portal.port !== local.port) return false;
  if (isWildcard(portal.ip)) {
    // "::" listens on both families; "0.0.0.0" on IPv4 only.
    return portal.ip !== '0.0.0.0' || !isIPv6(normalizeIp(local.ip));
  }
  return normalizeIp(portal.ip) === normalizeIp(local.ip);
}

function targetEntries(target: TargetView, initiatorName: string, local: PortalAddress): KeyValue[] {
  const addrs: string[] = [];
  for (const tpg of target.tpgs) {
    if (!tpgAdmits(tpg, initiatorName)) continue;
    // Through a tunnel only its relay's advertised portal is reachable, never the agent's LAN portals.
    const paths = local.tunnel ? (tpg.tunnelPortals ?? []).filter((p) => portalMatches(p, local)) : tpg.portals;
    for (const p of paths) {
      const ip = isWildcard(p.ip) ? normalizeIp(local.ip) : normalizeIp(p.ip);
      const a = formatAddress(ip, p.port, tpg.tag);
      if (!addrs.includes(a)) addrs.push(a);
    }
  }
  if (addrs.length === 0) return [];
  return [['TargetName', target.name], ...addrs.map((a): KeyValue => ['TargetAddress', a])];
}

/**
 * Answers SendTargets=<value>. In a discovery session "All" lists every accessible target; in a normal
 * session only the session's own target is reported (RFC 7143 §12.3).
 */
export function sendTargets(
  registry: TargetRegistry, initiatorName: string, value: string, local: PortalAddress, sessionTarget?: string,
): KeyValue[] {
  let names: string[];
  if (value === 'All') names = sessionTarget ? [sessionTarget] : registry.targets().map((t) => t.name);
  else if (value === '') names = sessionTarget ? [sessionTarget] : [];
  else names = [value];
  const out: KeyValue[] = [];
  for (const name of names) {
    const t = registry.target(name);
    if (t) out.push(...targetEntries(t, initiatorName, local));
  }
  return out;
}
