// `outpost relay`: iSCSI portals for initiators + a WebSocket endpoint for agent-dialed tunnel connections
// (docs/tunnels.md). Each initiator connection is routed by its first Login Request to an idle tunnel
// connection of an agent serving that target, then spliced byte for byte; the relay never answers iSCSI
// itself except to refuse a login it cannot route. Node only; imports nothing from agent/.
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, isIP, type Server as NetServer, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import { CloseCode, MAX_DATA_MESSAGE, MessageType, TUNNEL_VERSION, decodeMessage, encodeMessage, type TunnelMessage } from '../../shared/tunnel-protocol.js';
import { RelayLoginStatus, loginReject, peekLoginRequest } from '../../shared/tunnel-login.js';
import { splice } from './pipe.js';
import { TokenFile, fingerprint } from './tokens.js';

export interface HostPort {
  host: string;
  port: number;
}

export interface RelayOptions {
  portal: HostPort;
  listen: HostPort;
  tokenFile: string;
  log: Logger;
  /** PEM files: the tunnel endpoint speaks wss://. Required on a non-loopback listen address. */
  tlsCert?: string;
  tlsKey?: string;
  maxTunnelsPerAgent?: number;
  maxTunnelsPerSource?: number;
  maxInitiatorsPerSource?: number;
  /** Time an agent has to send HELLO, and an initiator to send its first Login Request. */
  helloTimeoutMs?: number;
  /** How long an initiator waits for an idle tunnel connection of an agent that serves its target. */
  bindWaitMs?: number;
  /** Bytes buffered per direction per connection before the other side is paused. */
  highWater?: number;
}

interface TunnelConn {
  ws: WebSocket;
  source: string;
  agent?: string; // token fingerprint, after HELLO
  targets: Set<string>; // lower-cased IQNs
  state: 'hello' | 'idle' | 'bound';
  alive: boolean;
}

interface Waiter {
  wants: (c: TunnelConn) => boolean;
  take: (c: TunnelConn | undefined) => void;
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.')) || h === '::ffff:127.0.0.1';
}

const bare = (ip: string | undefined) => (ip ?? '?').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1');

export class Relay {
  private readonly o: Required<Omit<RelayOptions, 'tlsCert' | 'tlsKey'>> & Pick<RelayOptions, 'tlsCert' | 'tlsKey'>;
  private readonly tokens: TokenFile;
  private readonly conns = new Set<TunnelConn>();
  private readonly waiters = new Set<Waiter>();
  private readonly initiatorsBySource = new Map<string, number>();
  private readonly initiators = new Set<Socket>();
  private portalServer?: NetServer;
  private http?: HttpServer;
  private wss?: WebSocketServer;
  private pinger?: NodeJS.Timeout;
  private nextConnection = 1;
  private closing = false;

  constructor(opts: RelayOptions) {
    this.o = {
      maxTunnelsPerAgent: 64, maxTunnelsPerSource: 128, maxInitiatorsPerSource: 64, helloTimeoutMs: 10_000, bindWaitMs: 5_000,
      highWater: 1 << 20, ...opts,
    };
    if (!isLoopback(opts.listen.host) && !(opts.tlsCert && opts.tlsKey)) {
      throw new Error(`refusing plain ws:// on non-loopback listen address ${opts.listen.host}: give --tls-cert and --tls-key`);
    }
    if (Boolean(opts.tlsCert) !== Boolean(opts.tlsKey)) throw new Error('--tls-cert and --tls-key go together');
    this.tokens = new TokenFile(opts.tokenFile, opts.log, (fps) => this.revoke(fps));
  }

  get log(): Logger {
    return this.o.log;
  }

  async start(): Promise<{ portal: HostPort; listen: HostPort }> {
    await this.tokens.load();
    this.tokens.watch();
    const tls = this.o.tlsCert && this.o.tlsKey ? { cert: readFileSync(this.o.tlsCert), key: readFileSync(this.o.tlsKey) } : undefined;
    this.http = tls ? createHttpsServer(tls) : createHttpServer();
    this.http.on('request', (_req, res) => res.writeHead(426, { 'content-type': 'text/plain' }).end('tunnel endpoint: WebSocket only\n'));
    this.wss = new WebSocketServer({ server: this.http, maxPayload: MAX_DATA_MESSAGE, perMessageDeflate: false });
    this.wss.on('connection', (ws, req) => this.onTunnel(ws, req));
    const listen = await listenOn(this.http, this.o.listen);
    this.portalServer = createNetServer({ noDelay: true }, (s) => this.onInitiator(s));
    const portal = await listenOn(this.portalServer, this.o.portal);
    this.pinger = setInterval(() => this.ping(), 15_000);
    this.pinger.unref();
    this.log.info({ portal: `${portal.host}:${portal.port}`, listen: `${tls ? 'wss' : 'ws'}://${listen.host}:${listen.port}` }, 'relay listening');
    return { portal, listen };
  }

  /** Re-reads the token file (SIGHUP). */
  reloadTokens(): Promise<void> {
    return this.tokens.reload();
  }

  async close(): Promise<void> {
    this.closing = true;
    clearInterval(this.pinger);
    this.tokens.close();
    for (const w of this.waiters) w.take(undefined);
    for (const c of this.conns) c.ws.terminate();
    for (const s of this.initiators) s.destroy();
    await Promise.all([
      new Promise<void>((r) => (this.portalServer ? this.portalServer.close(() => r()) : r())),
      new Promise<void>((r) => (this.wss ? this.wss.close(() => r()) : r())),
      new Promise<void>((r) => (this.http ? this.http.close(() => r()) : r())),
    ]);
  }

  // --- agents -----------------------------------------------------------------------------------

  private onTunnel(ws: WebSocket, req: IncomingMessage): void {
    const source = bare(req.socket.remoteAddress);
    const fromSource = [...this.conns].filter((c) => c.source === source).length;
    if (this.closing || fromSource >= this.o.maxTunnelsPerSource) {
      if (!this.closing) this.log.warn({ source, limit: this.o.maxTunnelsPerSource }, 'relay limit: tunnel connections per source address reached; connection refused');
      ws.close(CloseCode.LIMIT, 'too many tunnel connections from this address');
      return;
    }
    const c: TunnelConn = { ws, source, targets: new Set(), state: 'hello', alive: true };
    this.conns.add(c);
    const helloTimer = setTimeout(() => this.refuse(c, 'HELLO_TIMEOUT', 'no HELLO in time', CloseCode.PROTOCOL), this.o.helloTimeoutMs);
    ws.on('pong', () => (c.alive = true));
    ws.on('close', () => {
      clearTimeout(helloTimer);
      this.conns.delete(c);
    });
    ws.on('error', (e) => this.log.debug({ source, err: e.message }, 'tunnel connection error'));
    const onControl = (data: Buffer, isBinary: boolean) => {
      if (c.state === 'bound') return; // the splice owns the stream now
      let m: TunnelMessage;
      try {
        if (!isBinary) throw new Error('text message');
        m = decodeMessage(data);
      } catch (e) {
        return this.refuse(c, 'PROTOCOL', `malformed tunnel message: ${(e as Error).message}`, CloseCode.PROTOCOL);
      }
      if (c.state !== 'hello' || m.type !== MessageType.HELLO) {
        return this.refuse(c, 'PROTOCOL', `unexpected tunnel message type ${m.type} while ${c.state}`, CloseCode.PROTOCOL);
      }
      clearTimeout(helloTimer);
      this.onHello(c, m);
    };
    ws.on('message', onControl);
  }

  private onHello(c: TunnelConn, m: Extract<TunnelMessage, { type: typeof MessageType.HELLO }>): void {
    if (!this.tokens.accepts(m.token)) {
      this.log.warn({ source: c.source }, 'tunnel refused: unknown or revoked agent token');
      return this.refuse(c, 'UNAUTHORIZED', 'agent token not accepted', CloseCode.UNAUTHORIZED);
    }
    const agent = fingerprint(m.token);
    const mine = [...this.conns].filter((x) => x.agent === agent).length;
    if (mine >= this.o.maxTunnelsPerAgent) {
      this.log.warn({ agent, source: c.source, limit: this.o.maxTunnelsPerAgent }, 'relay limit: tunnel connections per agent reached; connection refused');
      return this.refuse(c, 'LIMIT', 'too many tunnel connections for this agent', CloseCode.LIMIT);
    }
    c.agent = agent;
    c.targets = new Set(m.targets.map((t) => t.toLowerCase()));
    c.state = 'idle';
    c.ws.send(encodeMessage({ type: MessageType.READY, relay: `outpost-relay/${TUNNEL_VERSION}` }));
    this.log.debug({ agent, source: c.source, targets: m.targets }, 'tunnel connection ready');
    for (const w of this.waiters) {
      if (w.wants(c)) {
        this.waiters.delete(w);
        w.take(c);
        return;
      }
    }
  }

  private refuse(c: TunnelConn, code: string, message: string, close: number): void {
    if (c.ws.readyState === c.ws.OPEN) {
      c.ws.send(encodeMessage({ type: MessageType.ERROR, code, message }));
      c.ws.close(close, code);
    } else c.ws.terminate();
    this.conns.delete(c);
    if (code !== 'UNAUTHORIZED') this.log.warn({ source: c.source, agent: c.agent, code }, `tunnel connection closed: ${message}`);
  }

  private revoke(fps: string[]): void {
    for (const c of [...this.conns]) {
      if (c.agent && fps.includes(c.agent)) {
        this.log.warn({ agent: c.agent, state: c.state }, 'agent token revoked: tunnel connection dropped');
        c.ws.close(CloseCode.UNAUTHORIZED, 'token revoked');
        c.ws.terminate();
        this.conns.delete(c);
      }
    }
  }

  /** Idle connections get a WebSocket ping; one that missed the previous answer is dead (a lost uplink). */
  private ping(): void {
    for (const c of this.conns) {
      if (c.state !== 'idle') continue;
      if (!c.alive) {
        c.ws.terminate();
        this.conns.delete(c);
        continue;
      }
      c.alive = false;
      c.ws.ping();
    }
  }

  // --- initiators -------------------------------------------------------------------------------

  private onInitiator(s: Socket): void {
    const source = bare(s.remoteAddress);
    const remote = `${source}:${s.remotePort ?? 0}`;
    const n = this.initiatorsBySource.get(source) ?? 0;
    if (this.closing || n >= this.o.maxInitiatorsPerSource) {
      if (!this.closing) this.log.warn({ source, limit: this.o.maxInitiatorsPerSource }, 'relay limit: initiator connections per source address reached; connection refused');
      s.destroy();
      return;
    }
    this.initiatorsBySource.set(source, n + 1);
    this.initiators.add(s);
    s.once('close', () => {
      this.initiators.delete(s);
      const m = (this.initiatorsBySource.get(source) ?? 1) - 1;
      if (m <= 0) this.initiatorsBySource.delete(source);
      else this.initiatorsBySource.set(source, m);
    });
    s.on('error', () => s.destroy());
    s.setNoDelay(true);
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      this.log.info({ initiator: remote }, 'initiator sent no Login Request in time; closed');
      s.destroy();
    }, this.o.helloTimeoutMs);
    const onData = (chunk: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      const p = peekLoginRequest(buf);
      if (p.kind === 'need') return;
      s.off('data', onData);
      s.pause();
      clearTimeout(timer);
      if (p.kind === 'bad') {
        this.log.info({ initiator: remote, reason: p.reason }, 'initiator connection refused');
        if (buf.length >= 48 && (buf[0]! & 0x3f) === 0x03) refuseLogin(s, loginReject(buf, RelayLoginStatus.INITIATOR_ERROR));
        else s.destroy();
        return;
      }
      const discovery = p.sessionType === 'Discovery';
      const target = p.targetName?.toLowerCase();
      if (!discovery && !target) {
        refuseLogin(s, loginReject(buf, RelayLoginStatus.INITIATOR_ERROR));
        return;
      }
      const wants = (c: TunnelConn) => c.state === 'idle' && (discovery || c.targets.has(target!));
      const first = buf;
      const route = (c: TunnelConn | undefined) => {
        if (!c) {
          const served = discovery ? [...this.conns].some((x) => x.agent) : [...this.conns].some((x) => x.targets.has(target!));
          const status = served || discovery ? RelayLoginStatus.UNAVAILABLE : RelayLoginStatus.NOT_FOUND;
          this.log.info({ initiator: remote, target: p.targetName, discovery, status: status.join('/') }, served ? 'login refused: no idle tunnel connection for the target' : 'login refused: target not served by any connected agent');
          if (!s.destroyed) refuseLogin(s, loginReject(first, status));
          return;
        }
        if (s.destroyed) return; // the initiator gave up while waiting: the tunnel connection stays idle
        this.bind(c, s, remote, first);
      };
      const now = this.pick(wants);
      if (now || this.closing) return route(now);
      const anyServes = [...this.conns].some((x) => x.agent && (discovery || x.targets.has(target!)));
      if (!anyServes) return route(undefined);
      // An agent serves it but every connection of its pool is bound: its replenishing dial is on the way.
      const w: Waiter = {
        wants,
        take: (c) => {
          clearTimeout(wt);
          this.waiters.delete(w);
          route(c);
        },
      };
      const wt = setTimeout(() => w.take(undefined), this.o.bindWaitMs);
      this.waiters.add(w);
      s.once('close', () => {
        clearTimeout(wt);
        this.waiters.delete(w);
      });
    };
    s.on('data', onData);
  }

  /** The idle connection that has waited longest (Set order is insertion order) among those that fit. */
  private pick(wants: (c: TunnelConn) => boolean): TunnelConn | undefined {
    for (const c of this.conns) if (wants(c) && c.ws.readyState === c.ws.OPEN) return c;
    return undefined;
  }

  private bind(c: TunnelConn, s: Socket, remote: string, first: Buffer): void {
    c.state = 'bound';
    const connection = this.nextConnection++;
    c.ws.send(encodeMessage({ type: MessageType.BIND, connection, initiator: remote }));
    this.log.info({ connection, initiator: remote, agent: c.agent }, 'initiator connection bound to a tunnel');
    s.resume();
    splice(s, c.ws, first, this.o.highWater, (why, stats) => {
      this.conns.delete(c);
      this.log.info({ connection, why, bytesToAgent: stats.toAgent, bytesToInitiator: stats.toInitiator }, 'initiator connection ended');
    });
  }
}

/**
 * Sends the refusal and closes. The socket is read again (and dropped after a grace period) so the
 * initiator's FIN is seen: a paused socket would never emit 'close' and would hold its limit slot.
 */
function refuseLogin(s: Socket, response: Uint8Array): void {
  s.resume();
  s.end(response);
  setTimeout(() => s.destroy(), 2000).unref();
}

function listenOn(server: NetServer | HttpServer, at: HostPort): Promise<HostPort> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: at.host.replace(/^\[(.*)\]$/, '$1'), port: at.port }, () => {
      server.off('error', reject);
      const a = server.address();
      resolve({ host: at.host, port: typeof a === 'object' && a ? a.port : at.port });
    });
  });
}
