// RFC 7143 §4.4 (network portals): the iSCSI target server — portals, connections, sessions, shutdown.
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { silentLogger, type Logger } from '../lib/log.js';
import type { TargetCore } from '../scsi/port.js';
import type { PortalAddress, TargetRegistry } from './target-registry.js';
import { Connection } from './connection.js';
import { SessionTable } from './session.js';
import { normalizeIp } from './discovery.js';
import type { FabricCounters, ServerContext } from './context.js';
import { LoginThrottle, type ThrottleOptions } from './login/throttle.js';

export interface IscsiServerOptions {
  registry: TargetRegistry;
  core: TargetCore;
  log?: Logger;
  /** Idle time before the target pings with NOP-In (LIO nopin_timeout, default 15 s). */
  nopInIntervalMs?: number;
  /** Time to wait for the answer before dropping the connection (LIO nopin_response_timeout, default 30 s). */
  nopInTimeoutMs?: number;
  /** Time allowed for the login phase (LIO login_timeout, default 15 s). */
  loginTimeoutMs?: number;
  /** Failed-login backoff (defaults: 250 ms doubling to 30 s; see login/throttle.ts). */
  loginThrottle?: ThrottleOptions;
  /** Data-Out one session may have outstanding (solicited or buffered); default 256 MiB. */
  maxSessionDataOutBytes?: number;
  counters?: FabricCounters;
}

export interface SessionInfo {
  tsih: number;
  targetName: string;
  initiatorName: string;
  isid: string;
  tpgt: number;
  connections: { cid: number; local: PortalAddress; remote: string }[];
  type: 'Normal' | 'Discovery';
}

interface Listener {
  server: Server;
  bound: PortalAddress;
}

const key = (a: PortalAddress) => `${normalizeIp(a.ip)}|${a.port}`;

export class IscsiServer {
  private readonly ctx: ServerContext & { closing: boolean };
  private readonly listeners = new Map<string, Listener>();
  private readonly connections = new Map<Connection, string | undefined>(); // → listener key it arrived on

  constructor(opts: IscsiServerOptions) {
    this.ctx = {
      registry: opts.registry,
      core: opts.core,
      log: opts.log ?? silentLogger,
      sessions: new SessionTable(opts.core),
      nopInIntervalMs: opts.nopInIntervalMs ?? 15_000,
      nopInTimeoutMs: opts.nopInTimeoutMs ?? 30_000,
      loginTimeoutMs: opts.loginTimeoutMs ?? 15_000,
      throttle: new LoginThrottle(opts.loginThrottle),
      maxSessionDataOutBytes: opts.maxSessionDataOutBytes ?? 256 << 20,
      closing: false,
      counters: opts.counters,
    };
  }

  /** Listens on a portal (0.0.0.0 / :: = all interfaces). Port 0 binds an ephemeral port. Idempotent. */
  async addPortal(addr: PortalAddress): Promise<PortalAddress> {
    const existing = this.listeners.get(key(addr)) ?? [...this.listeners.values()].find((l) => key(l.bound) === key(addr));
    if (existing) return existing.bound;
    const server = createServer({ noDelay: true }, (socket) => this.accept(socket, lk));
    let lk = '';
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: addr.ip, port: addr.port, ipv6Only: false }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (e) => this.ctx.log.error({ err: e, portal: addr }, 'portal error'));
    const a = server.address();
    const bound: PortalAddress = { ip: addr.ip, port: typeof a === 'object' && a ? a.port : addr.port };
    lk = key(bound);
    this.listeners.set(lk, { server, bound });
    this.ctx.log.info({ portal: `${bound.ip}:${bound.port}` }, 'iSCSI portal listening');
    return bound;
  }

  /** Stops listening on a portal and closes the connections that arrived on it. */
  async removePortal(addr: PortalAddress): Promise<void> {
    const lk = key(addr);
    const l = this.listeners.get(lk);
    if (!l) return;
    this.listeners.delete(lk);
    this.ctx.log.info({ portal: `${l.bound.ip}:${l.bound.port}` }, 'iSCSI portal removed');
    const closed = new Promise<void>((resolve) => l.server.close(() => resolve()));
    for (const [c, k] of this.connections) if (k === lk) c.destroy('portal removed');
    await closed;
  }

  listening(): PortalAddress[] {
    return [...this.listeners.values()].map((l) => l.bound);
  }

  /** Serves one connection on any duplex byte stream (TCP socket, tunnel). */
  serveConnection(stream: Duplex, local: PortalAddress, remote = 'unknown'): void {
    this.attach(stream, local, remote, undefined);
  }

  private accept(socket: Socket, listenerKey: string): void {
    if (this.ctx.closing) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 30_000);
    const local: PortalAddress = { ip: normalizeIp(socket.localAddress ?? ''), port: socket.localPort ?? 0 };
    const remote = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.attach(socket, local, remote, listenerKey);
  }

  private attach(stream: Duplex, local: PortalAddress, remote: string, listenerKey: string | undefined): void {
    const conn = new Connection(this.ctx, stream, local, remote, (c) => this.connections.delete(c));
    this.connections.set(conn, listenerKey);
  }

  sessions(): SessionInfo[] {
    return this.ctx.sessions.all().map((s) => ({
      tsih: s.tsih,
      targetName: s.targetName,
      initiatorName: s.initiatorName,
      isid: s.isid,
      tpgt: s.tpg?.tag ?? 0,
      connections: [...s.connections.values()].map((c) => ({ cid: c.cid, local: c.local, remote: c.remote })),
      type: s.type,
    }));
  }

  /**
   * Ends the sessions of `targetIqn` (of one initiator when given) — an ACL revoked, its CHAP credentials
   * changed, the target deleted. Names compare case-insensitively (RFC 3722 §6: iSCSI names are
   * normalised to lower case), so a session logged in as IQN.2026-01.X is dropped for iqn.2026-01.x.
   * Returns how many sessions ended.
   */
  dropSessions(targetIqn: string, initiatorIqn: string | undefined, reason: string): number {
    const target = targetIqn.toLowerCase();
    const initiator = initiatorIqn?.toLowerCase();
    let n = 0;
    for (const s of this.ctx.sessions.all()) {
      if (s.type !== 'Normal' || s.targetName.toLowerCase() !== target) continue;
      if (initiator !== undefined && s.initiatorName.toLowerCase() !== initiator) continue;
      this.ctx.log.info({ tsih: s.tsih, target: s.targetName, initiator: s.initiatorName, reason }, 'iSCSI session dropped');
      s.end(reason);
      n++;
    }
    return n;
  }

  /** dropSessions with the administrator's reason (kept for existing callers). */
  closeSessions(targetName: string, initiatorName?: string): number {
    return this.dropSessions(targetName, initiatorName, 'closed by administrator');
  }

  /** Stops accepting, lets in-flight commands finish (at most `graceMs`), then closes everything. */
  async close(graceMs = 5000): Promise<void> {
    this.ctx.closing = true;
    const servers = [...this.listeners.values()].map((l) => new Promise<void>((r) => l.server.close(() => r())));
    this.listeners.clear();
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline && [...this.connections.keys()].some((c) => c.activeTasks > 0)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const s of this.ctx.sessions.all()) s.end('server closing');
    for (const c of [...this.connections.keys()]) c.destroy('server closing');
    await Promise.all(servers);
  }
}
