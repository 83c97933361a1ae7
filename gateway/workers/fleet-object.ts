// Workers adapter: one Durable Object per fleet runs the gateway app with SQLite storage
// (ctx.storage.sql) and hibernatable agent WebSockets (ctx.acceptWebSocket, auto-response pings).
import { DurableObject } from 'cloudflare:workers';
import { CONTROL_PATH, PING_TEXT, PONG_TEXT } from '../../shared/control-protocol.js';
import { createApp } from '../app.js';
import { ControlService, type ControlPeer, type PeerState } from '../control.js';
import { secretKeyProblem } from '../crypto.js';
import { scryptKdf } from '../node/scrypt.js';
import type { GatewayDeps, GatewayLogger, Hub, HubConnection } from '../hub.js';
import { SqlStore, type SqlDriver, type SqlValue } from '../sql-store.js';

export interface Env {
  FLEET: DurableObjectNamespace<FleetObject>;
  OUTPOST_ADMIN_TOKEN?: string;
  OUTPOST_SECRET_KEY?: string;
  OUTPOST_FLEET?: string;
}

/** JSON lines on the console (Workers logs); callers never pass secrets. */
const consoleLogger: GatewayLogger = {
  info: (obj, msg) => console.log(JSON.stringify({ level: 'info', msg, ...obj })),
  warn: (obj, msg) => console.warn(JSON.stringify({ level: 'warn', msg, ...obj })),
  error: (obj, msg) => console.error(JSON.stringify({ level: 'error', msg, ...obj })),
};

/** As on Node (gateway/node/hub.ts): a socket that has not proven an agent token by then is closed. */
const AUTH_TIMEOUT_MS = 10_000;

/** Workers keep the accept time in the attachment, since the object may hibernate meanwhile. */
type WorkerPeerState = PeerState & { acceptedAt?: number };

function stateOf(ws: WebSocket): WorkerPeerState {
  const s = (ws.deserializeAttachment() as WorkerPeerState | null) ?? { connId: crypto.randomUUID(), servedTargets: [] };
  if (!s.connId) {
    // accepted by a release without connection ids: give it one for good
    s.connId = crypto.randomUUID();
    ws.serializeAttachment(s);
  }
  return s;
}

export class FleetObject extends DurableObject<Env> {
  private readonly app: ReturnType<typeof createApp> | undefined;
  private readonly control: ControlService | undefined;
  private readonly misconfigured: string | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
    // Workers have no start to fail: a missing or bad secret makes every request answer 500 with the reason.
    const keyProblem = env.OUTPOST_SECRET_KEY ? secretKeyProblem(env.OUTPOST_SECRET_KEY) : undefined;
    if (!env.OUTPOST_ADMIN_TOKEN || !env.OUTPOST_SECRET_KEY || keyProblem) {
      this.misconfigured = keyProblem ? `gateway misconfigured: ${keyProblem}` : 'gateway misconfigured: OUTPOST_ADMIN_TOKEN and OUTPOST_SECRET_KEY must be set';
      consoleLogger.error({}, this.misconfigured);
      return;
    }
    const sql = ctx.storage.sql;
    const driver: SqlDriver = {
      all: (q, p) => sql.exec<Record<string, SqlValue>>(q, ...p).toArray(),
      run: (q, p) => void sql.exec(q, ...p),
      transaction: (fn) => ctx.storage.transactionSync(fn),
    };
    const hub: Hub = {
      connections: () => {
        const out: HubConnection[] = [];
        for (const ws of ctx.getWebSockets()) {
          const s = stateOf(ws);
          if (s.agentId !== undefined && ws.readyState === WebSocket.OPEN) out.push({ connId: s.connId, agentId: s.agentId, servedTargets: s.servedTargets, send: (f) => ws.send(f) });
        }
        return out;
      },
      closeAgent: (agentId, code, reason) => {
        for (const ws of ctx.getWebSockets()) if (stateOf(ws).agentId === agentId) ws.close(code, reason);
      },
    };
    const deps: GatewayDeps = { store: new SqlStore(driver), hub, secretKey: env.OUTPOST_SECRET_KEY, kdf: scryptKdf, adminToken: env.OUTPOST_ADMIN_TOKEN, logger: consoleLogger };
    this.app = createApp(deps);
    this.control = new ControlService(deps);
  }

  override async fetch(req: Request): Promise<Response> {
    if (!this.app || !this.control) return Response.json({ error: this.misconfigured ?? 'gateway misconfigured' }, { status: 500 });
    if (new URL(req.url).pathname !== CONTROL_PATH) return this.app.fetch(req);
    if (req.headers.get('upgrade')?.toLowerCase() !== 'websocket') return Response.json({ error: 'expected a WebSocket upgrade' }, { status: 426 });
    const state: WorkerPeerState = { connId: crypto.randomUUID(), servedTargets: [] };
    const auth = req.headers.get('authorization');
    if (auth !== null) {
      const agent = await this.control.authenticate(auth);
      if (!agent) return Response.json({ error: 'invalid agent token' }, { status: 401 });
      state.agentId = agent.id;
    }
    const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
    this.ctx.acceptWebSocket(server);
    if (state.agentId === undefined) {
      state.acceptedAt = Date.now();
      // an alarm survives hibernation; it closes the socket if no hello with a valid token came by then
      const due = state.acceptedAt + AUTH_TIMEOUT_MS;
      const current = await this.ctx.storage.getAlarm();
      if (current === null || current > due) await this.ctx.storage.setAlarm(due);
    }
    server.serializeAttachment(state);
    return new Response(null, { status: 101, webSocket: client });
  }

  private peer(ws: WebSocket): ControlPeer {
    const state = stateOf(ws);
    return { state, send: (d) => ws.send(d), close: (code, reason) => ws.close(code, reason), saveState: () => ws.serializeAttachment(state) };
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    await this.control?.onFrame(this.peer(ws), typeof message === 'string' ? message : new Uint8Array(message));
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    let next: number | undefined;
    for (const ws of this.ctx.getWebSockets()) {
      const s = stateOf(ws);
      if (s.agentId !== undefined || s.acceptedAt === undefined) continue;
      const due = s.acceptedAt + AUTH_TIMEOUT_MS;
      if (due <= now) {
        try {
          ws.close(1008, 'unauthorized');
        } catch {
          // already closing
        }
      } else next = Math.min(next ?? due, due);
    }
    if (next !== undefined) await this.ctx.storage.setAlarm(next);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    await this.control?.onClose(this.peer(ws));
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.control?.onClose(this.peer(ws));
  }
}
