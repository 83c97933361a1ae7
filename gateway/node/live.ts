// Node adapter of the dashboard's push channel (gateway/ui/live.ts): `ws` sockets upgraded at /ui/api/live
// on the gateway's HTTP server, authenticated before the upgrade (401 otherwise), sent the coalesced notices.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { GatewayLogger } from '../hub.js';
import { LIVE_PING, LIVE_PONG, LIVE_PROTOCOL, LIVE_SILENCE_MS, LiveFeed, MAX_LIVE_SOCKETS, checkLiveUpgrade, liveMessage } from '../ui/live.js';

const STATUS_TEXT = { 400: 'Bad Request', 401: 'Unauthorized', 503: 'Service Unavailable' } as const;

export class NodeLiveSockets {
  private readonly sockets = new Set<WebSocket>();
  /** When each socket was last heard from (its pings). */
  private readonly heard = new WeakMap<WebSocket, number>();
  // the page sends only pings: a larger frame is not a dashboard
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024, handleProtocols: () => LIVE_PROTOCOL });
  readonly feed = new LiveFeed(() => [...this.sockets].filter((ws) => ws.readyState === ws.OPEN));
  private closing = false;

  constructor(private readonly adminToken: string, private readonly logger: GatewayLogger) {}

  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const verdict = await checkLiveUpgrade(req.headers['sec-websocket-protocol'], this.adminToken);
    if (verdict !== 'ok') {
      this.logger.warn({ status: verdict }, 'dashboard live channel refused');
      return refuse(socket, verdict);
    }
    this.sweep();
    if (this.closing || this.sockets.size >= MAX_LIVE_SOCKETS) return refuse(socket, 503);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.sockets.add(ws);
      this.heard.set(ws, Date.now());
      ws.on('message', (data, isBinary) => {
        this.heard.set(ws, Date.now());
        if (!isBinary && String(data) === LIVE_PING) ws.send(LIVE_PONG);
        else ws.close(1003, 'the live channel takes only pings');
      });
      ws.on('error', () => ws.terminate());
      ws.on('close', () => this.sockets.delete(ws));
      ws.send(liveMessage('hello'));
    });
  }

  /** Cuts the sockets of dashboards that went away without closing (a laptop that slept), so they free their place. */
  private sweep(): void {
    const now = Date.now();
    for (const ws of this.sockets) if (now - (this.heard.get(ws) ?? 0) > LIVE_SILENCE_MS) ws.terminate();
  }

  /** Tells every dashboard the gateway is going away (1001: the page reconnects with backoff), then cuts them. */
  async close(graceMs: number): Promise<void> {
    this.closing = true;
    this.feed.close();
    this.wss.close();
    if (this.sockets.size === 0) return;
    const closed = [...this.sockets].map((ws) => new Promise<void>((r) => ws.once('close', () => r())));
    for (const ws of this.sockets) ws.close(1001, 'gateway shutting down');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(closed), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const ws of this.sockets) ws.terminate();
    await Promise.all(closed);
  }
}

function refuse(socket: Duplex, status: keyof typeof STATUS_TEXT): void {
  socket.end(`HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
