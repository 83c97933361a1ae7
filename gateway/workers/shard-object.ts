// Workers adapter, agent side: a shard Durable Object holds a bounded part of the fleet's agent sockets
// (hibernatable WebSockets, auto-response pings) and runs the control service and push rounds for them;
// the store is the coordinator's (gateway/workers/remote-store.ts), so policy has one home.
import { DurableObject } from 'cloudflare:workers';
import { CONTROL_PATH, PING_TEXT, PONG_TEXT } from '../../shared/control-protocol.js';
import type { ResultMessage } from '../../shared/control-commands.js';
import { ControlService, type ControlPeer, type PeerState } from '../control.js';
import { Fleet } from '../fleet.js';
import type { GatewayDeps, Hub, HubConnection } from '../hub.js';
import { gatewayMetrics } from '../metrics.js';
import { scryptKdf } from '../node/scrypt.js';
import { sha256HexSync } from '../node/token-hash.js';
import { envLogger, type Env } from './env.js';
import { remoteStore, type Admitted } from './remote-store.js';
import type { ShardMetric } from './fleet-object.js';
import type { PresenceRow, ShardApi } from './sharded-hub.js';

/** As on Node (gateway/node/hub.ts): a socket that has not proven an agent token by then is closed. */
const AUTH_TIMEOUT_MS = 10_000;
/** Figures for the coordinator's dashboard are sent together over this window. */
const METRICS_BATCH_MS = 100;
/** Header the Worker sets on an upgrade it routes here: this shard's index. */
export const SHARD_HEADER = 'x-outpost-shard';

/** Kept in the socket's attachment, since the object may hibernate: the accept time and the shard index. */
type ShardPeerState = PeerState & { acceptedAt?: number; shard?: number; reported?: boolean };

function stateOf(ws: WebSocket): ShardPeerState {
  return (ws.deserializeAttachment() as ShardPeerState | null) ?? { connId: crypto.randomUUID(), servedTargets: [] };
}

export class FleetShard extends DurableObject<Env> implements ShardApi {
  private readonly deps: GatewayDeps | undefined;
  private readonly control: ControlService | undefined;
  private index: number | undefined;
  private seed: ((a: Admitted) => void) | undefined;
  /** Sockets being admitted (listed at the coordinator, not yet accepted here): a relist keeps them. */
  private readonly admitting = new Set<string>();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_TEXT, PONG_TEXT));
    if (!env.OUTPOST_ADMIN_TOKEN || !env.OUTPOST_SECRET_KEY) return; // the coordinator answers the reason
    const consoleLogger = envLogger(env);
    const coordinator = env.FLEET.get(env.FLEET.idFromName(env.OUTPOST_FLEET ?? 'default'));
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
    const { store, seed } = remoteStore((method, args) => coordinator.storeCall(method, args));
    this.seed = seed;
    // Commands are sent by the coordinator (its REST app, migrations): their results go back there.
    const commandResults = {
      answered: (connId: string, msg: ResultMessage) => void coordinator.commandResult(connId, msg).catch((e: Error) => consoleLogger.warn({ err: e.message }, 'command result not delivered')),
      lost: (connId: string) => void coordinator.commandLost(connId).catch(() => {}),
    };
    this.deps = { store, hub, secretKey: env.OUTPOST_SECRET_KEY, kdf: scryptKdf, hashToken: sha256HexSync, adminToken: env.OUTPOST_ADMIN_TOKEN, logger: consoleLogger, commandResults };
    this.control = new ControlService(this.deps);
    // The dashboard and /metrics are the coordinator's: this shard's push, ack and event figures go there.
    // Sent in batches, as the acks are stored: one call per window, not one per agent.
    const m = gatewayMetrics(this.deps);
    let batch: ShardMetric[] = [];
    const queue = (x: ShardMetric): void => {
      if (batch.length === 0) {
        setTimeout(() => {
          const out = batch;
          batch = [];
          void coordinator.metrics(out).catch((e: Error) => consoleLogger.warn({ err: e.message }, 'shard figures not delivered'));
        }, METRICS_BATCH_MS);
      }
      batch.push(x);
    };
    m.pushed = (agentId, version) => queue(['pushed', agentId, version]);
    m.acked = (agentId, version) => queue(['acked', agentId, version]);
    m.event = (kind, agentId, detail) => queue(['event', kind, agentId, detail]);
    // after a restart the coordinator may list sockets this shard no longer has: report what it holds
    if (ctx.getWebSockets().length > 0) void this.relist().catch(() => {});
  }

  async relist(): Promise<void> {
    const held = this.ctx.getWebSockets().map(stateOf).filter((s) => s.shard !== undefined);
    this.index ??= held[0]?.shard;
    if (this.index === undefined) return; // never given a socket: nothing to list
    await this.coordinator().presence(this.index, held.filter((s) => s.agentId !== undefined && s.reported).map((s): PresenceRow => [s.connId, s.agentId!, s.servedTargets]), [], true, [...this.admitting]);
  }

  private coordinator() {
    return this.env.FLEET.get(this.env.FLEET.idFromName(this.env.OUTPOST_FLEET ?? 'default'));
  }

  override async fetch(req: Request): Promise<Response> {
    if (!this.control) return Response.json({ error: 'gateway misconfigured: OUTPOST_ADMIN_TOKEN and OUTPOST_SECRET_KEY must be set' }, { status: 500 });
    if (new URL(req.url).pathname !== CONTROL_PATH) return Response.json({ error: 'not found' }, { status: 404 });
    if (req.headers.get('upgrade')?.toLowerCase() !== 'websocket') return Response.json({ error: 'expected a WebSocket upgrade' }, { status: 426 });
    const shard = Number(req.headers.get(SHARD_HEADER));
    if (!Number.isInteger(shard) || shard < 0) return Response.json({ error: 'no shard index' }, { status: 500 });
    this.index = shard;
    const state: ShardPeerState = { connId: crypto.randomUUID(), servedTargets: [], shard };
    const auth = req.headers.get('authorization');
    if (auth !== null) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      // one call authenticates and lists the socket at the coordinator, before it can say hello: a change
      // committed from here on reaches it
      // (Workers RPC typing counts an agent's free-form status as unserializable; it is plain JSON)
      this.admitting.add(state.connId);
      let admitted: Admitted | undefined;
      try {
        admitted = m && m[1]!.length <= 512 ? ((await this.coordinator().admit(shard, state.connId, sha256HexSync(m[1]!))) as unknown as Admitted | undefined) : undefined;
      } finally {
        // accepted below without another await: from then on getWebSockets() lists it for a relist
        this.admitting.delete(state.connId);
      }
      if (!admitted) return Response.json({ error: 'invalid agent token' }, { status: 401 });
      this.seed!(admitted);
      state.agentId = admitted.agent.id;
      state.reported = true;
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
    const saveState = (): void => {
      // a socket authenticated by its hello (no header) is listed once it is known
      if (state.agentId !== undefined && !state.reported && state.shard !== undefined) {
        state.reported = true;
        void this.coordinator().presence(state.shard, [[state.connId, state.agentId, state.servedTargets]], [], false).catch(() => {});
      }
      ws.serializeAttachment(state);
    };
    return { state, send: (d) => ws.send(d), close: (code, reason) => ws.close(code, reason), saveState };
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

  private async gone(ws: WebSocket): Promise<void> {
    const s = stateOf(ws);
    if (s.reported && s.shard !== undefined) await this.coordinator().presence(s.shard, [], [s.connId], false).catch(() => {});
    await this.control?.onClose(this.peer(ws));
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    await this.gone(ws);
    try {
      ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
    } catch {
      // already closed
    }
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.gone(ws);
  }

  // RPC from the coordinator ---------------------------------------------------------------------

  async push(agentIds: readonly string[] | null, version: number): Promise<void> {
    if (this.deps) Fleet.for(this.deps).push(agentIds ?? undefined, version);
  }

  async closeAgent(agentId: string, code: number, reason: string): Promise<void> {
    this.deps?.hub.closeAgent(agentId, code, reason);
  }

  async send(connId: string, frame: Uint8Array): Promise<void> {
    for (const ws of this.ctx.getWebSockets()) if (stateOf(ws).connId === connId) ws.send(frame);
  }
}
