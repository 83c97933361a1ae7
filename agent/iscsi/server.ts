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

  /** Ends the sessions of `targetName` (of one initiator when given), e.g. after its ACL was revoked. */
  closeSessions(targetName: string, initiatorName?: string): number {
    let n = 0;
    for (const s of this.ctx.sessions.all()) {
      if (s.targetName !== targetName || (initiatorName !== undefined && s.initiatorName !== initiatorName)) continue;
      s.end('closed by administrator');
      n++;
    }
    return n;
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
