// Outpost's TPG key `outpost_tunnels` (docs/tunnels.md): validation and the advertised portal of each tunnel.
// Validated with the rest of saveconfig.json, so a bad tunnel is refused before anything changes.
import { isIP } from 'node:net';
import { isAbsolute } from 'node:path';
import type { PortalAddress } from '../iscsi/target-registry.js';
import type { TunnelConfig } from './schema.js';

type Obj = Record<string, unknown>;

export class TunnelConfigError extends Error {
  override name = 'ConfigError';
}

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$/;

/** "relay.example:3260" / "[::1]:3260" → the portal identity tunnel connections of that TPG carry. */
export function advertisedPortal(advertise: string): PortalAddress {
  const m = HOST_PORT.exec(advertise);
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new TunnelConfigError(`advertise must be HOST:PORT, got '${advertise}'`);
  return { ip: m[1]!.replace(/^\[(.*)\]$/, '$1').toLowerCase(), port: Number(m[2]), tunnel: true };
}

function isLoopbackHost(h: string): boolean {
  const x = h.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return x === 'localhost' || x === '::1' || (isIP(x) === 4 && x.startsWith('127.'));
}

/** Checks one tunnel; returns the message naming what is wrong, or undefined. */
export function tunnelProblem(t: unknown): string | undefined {
  if (typeof t !== 'object' || t === null || Array.isArray(t)) return 'must be an object';
  const o = t as Obj;
  if (typeof o.url !== 'string') return 'url must be a string';
  let u: URL;
  try {
    u = new URL(o.url);
  } catch {
    return `url '${o.url}' is not a URL`;
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') return `url '${o.url}' must be ws:// or wss://`;
  // The token goes in the first message: in clear only where nobody else can listen.
  if (u.protocol === 'ws:' && !isLoopbackHost(u.hostname)) return `url '${o.url}': plain ws:// only to a loopback relay; use wss://`;
  if (typeof o.advertise !== 'string') return 'advertise must be HOST:PORT';
  try {
    const a = advertisedPortal(o.advertise);
    if (a.ip === '0.0.0.0' || a.ip === '::') return `advertise '${o.advertise}' must be an address initiators can reach, not a wildcard`;
  } catch (e) {
    return (e as Error).message;
  }
  if (typeof o.token_file !== 'string' || !isAbsolute(o.token_file)) return 'token_file must be an absolute path';
  if (o.source !== undefined && (typeof o.source !== 'string' || isIP(o.source) === 0)) return `source '${String(o.source)}' is not an IP address`;
  if (o.ca_file !== undefined && (typeof o.ca_file !== 'string' || !isAbsolute(o.ca_file))) return 'ca_file must be an absolute path';
  if (o.ca_file !== undefined && u.protocol !== 'wss:') return 'ca_file applies to wss:// only';
  return undefined;
}

export function validateTunnels(v: unknown, where: string): asserts v is TunnelConfig[] {
  if (!Array.isArray(v)) throw new TunnelConfigError(`${where}.outpost_tunnels must be a list`);
  const urls = new Set<string>();
  for (const [i, t] of v.entries()) {
    const p = tunnelProblem(t);
    if (p) throw new TunnelConfigError(`${where} tunnel ${i}: ${p}`);
    const url = (t as TunnelConfig).url;
    if (urls.has(url)) throw new TunnelConfigError(`${where}: duplicate tunnel ${url}`);
    urls.add(url);
  }
}
