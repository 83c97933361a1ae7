// Node adapter of the agent hub: `ws` sockets upgraded on the HTTP server at /v1/connect.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CONTROL_PATH, CloseCode, MAX_FRAME_BYTES } from '../../shared/control-protocol.js';
import type { ControlPeer, ControlService, PeerState } from '../control.js';
import type { GatewayLogger, Hub, HubConnection } from '../hub.js';

const AUTH_TIMEOUT_MS = 10_000;
const HEARTBEAT_MS = 30_000;

interface Live { ws: WebSocket; state: PeerState; alive: boolean }

export class NodeHub implements Hub {
  private readonly live = new Set<Live>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  private control: ControlService | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private closing = false;
  private drained: (() => void) | undefined;
  /** Other WebSocket endpoints of the same server, by path (the dashboard's live channel, gateway/node/live.ts). */
  readonly upgrades = new Map<string, (req: IncomingMessage, socket: Duplex, head: Buffer) => Promise<void>>();

  constructor(private readonly logger: GatewayLogger) {
    this.heartbeat = setInterval(() => {
      for (const l of this.live) {
        if (!l.alive) l.ws.terminate();
        else {
          l.alive = false;
          l.ws.ping();
        }
      }
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  connections(): HubConnection[] {
    const out: HubConnection[] = [];
    for (const l of this.live) {
      const agentId = l.state.agentId;
      if (agentId !== undefined && l.ws.readyState === l.ws.OPEN) out.push({ connId: l.state.connId, agentId, servedTargets: l.state.servedTargets, send: (f) => l.ws.send(f) });
    }
    return out;
  }

  closeAgent(agentId: string, code: number, reason: string): void {
    for (const l of this.live) if (l.state.agentId === agentId) l.ws.close(code, reason);
  }

  /** Wires WebSocket upgrades on `server` to the control service. */
  attach(server: Server, control: ControlService): void {
    this.control = control;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      void this.upgrade(req, socket, head).catch((e: Error) => {
        this.logger.error({ err: e.message }, 'websocket upgrade failed');
        socket.destroy();
      });
    });
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (this.closing) return refuse(socket, 503, 'Service Unavailable');
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== CONTROL_PATH) {
      const other = this.upgrades.get(path);
      return other ? other(req, socket, head) : refuse(socket, 404, 'Not Found');
    }
    const state: PeerState = { connId: crypto.randomUUID(), servedTargets: [] };
    if (req.headers.authorization !== undefined) {
      const agent = await this.control!.authenticate(req.headers.authorization);
      if (!agent) {
        this.logger.warn({}, 'control upgrade refused: invalid agent token');
        return refuse(socket, 401, 'Unauthorized');
      }
      state.agentId = agent.id;
    }
    // the gateway may have begun its shutdown while the token was checked: do not add a socket it already cut
    if (this.closing) return refuse(socket, 503, 'Service Unavailable');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, state));
  }

  private accept(ws: WebSocket, state: PeerState): void {
    const l: Live = { ws, state, alive: true };
    this.live.add(l);
    const peer: ControlPeer = { state, send: (d) => ws.send(d), close: (code, reason) => ws.close(code, reason), saveState: () => {} };
    const authTimer = setTimeout(() => state.agentId === undefined && ws.close(CloseCode.policyViolation, 'unauthorized'), AUTH_TIMEOUT_MS);
    let chain = Promise.resolve();
    ws.on('pong', () => (l.alive = true));
    ws.on('message', (data, isBinary) => {
      l.alive = true;
      const frame = isBinary ? toBytes(data) : toBytes(data).toString('utf8');
      chain = chain.then(() => this.control!.onFrame(peer, frame));
    });
    ws.on('error', (e) => this.logger.warn({ agent_id: state.agentId, err: e.message }, 'control socket error'));
    ws.on('close', () => {
      clearTimeout(authTimer);
      this.live.delete(l);
      if (this.live.size === 0) this.drained?.();
      chain = chain.then(() => this.control!.onClose(peer));
    });
  }

  /**
   * Refuses new agents, tells every connected one the gateway is going away (1001, so its link redials,
   * possibly another gateway URL), and cuts the sockets that have not finished the close handshake
   * within `graceMs`. Without the bound a stop waits for every peer's answer, up to ws's 30-s close
   * timeout per socket: with thousands of agents (or one behind a dead NAT) that was 20-30 s.
   * Resolves when every socket is closed; each close still reaches ControlService.onClose.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.closing = true;
    clearInterval(this.heartbeat);
    this.wss.close();
    const drained = new Promise<void>((resolve) => (this.drained = resolve));
    if (this.live.size === 0) return;
    for (const l of this.live) l.ws.close(CloseCode.goingAway, 'gateway shutting down');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    for (const l of this.live) l.ws.terminate();
    await drained;
  }
}

function toBytes(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function refuse(socket: Duplex, status: number, text: string): void {
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
