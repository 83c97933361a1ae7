// A worker thread of scripts/fleet-load.ts: it holds a share of the simulated agents (each on its own
// WebSocket, the project's codec, the agent's reconnect backoff), so 10,000 sockets are not one event loop's
// work and the tool is not the bottleneck of what it measures. The main thread asks, this thread answers
// when its share has reached the asked-for state; times are absolute (timeOrigin + now) across threads.
import { parentPort, workerData } from 'node:worker_threads';
import WebSocket from 'ws';
import { reconnectDelay } from '../agent/control/link.js';
import { MAX_FRAME_BYTES, PING_TEXT, decodeGatewayMessage, encodeMessage } from '../shared/control-protocol.js';

export interface AgentsWorkerData {
  readonly wsUrl: string;
  readonly target: string;
  readonly sources: number;
  readonly statusMs: number;
  readonly agents: readonly { readonly i: number; readonly token: string }[];
}

/** Main thread → worker. Each is answered by one `done` message carrying the same `seq`. */
export type AgentsRequest =
  | { readonly seq: number; readonly type: 'connect'; readonly parallel: number; readonly want: number }
  | { readonly seq: number; readonly type: 'want'; readonly want: number }
  | { readonly seq: number; readonly type: 'reached' }
  | { readonly seq: number; readonly type: 'chatter' }
  | { readonly seq: number; readonly type: 'back'; readonly since: number }
  | { readonly seq: number; readonly type: 'stop' };

export interface AgentsAnswer {
  readonly seq: number;
  /** 'reached': per agent the absolute time it first held the wanted version; 'back': each agent's last snapshot time. */
  readonly times?: number[];
  /** Snapshots per agent since the last 'want'. */
  readonly snapshots?: number[];
  readonly connects?: number;
}

const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class SimAgent {
  ws: WebSocket | undefined;
  applied = 0;
  epoch: string | undefined;
  attempt = 0;
  snapshots = 0;
  connects = 0;
  reachedAt = 0;
  live = false;
  liveAt = 0;
  constructor(readonly i: number, readonly token: string) {}
}

const data = workerData as AgentsWorkerData;
const agents = data.agents.map((a) => new SimAgent(a.i, a.token));
let want = Number.MAX_SAFE_INTEGER;
let stopping = false;
let chatter: NodeJS.Timeout | undefined;

function connect(a: SimAgent): Promise<void> {
  return new Promise((done) => {
    a.connects++;
    const ws = new WebSocket(data.wsUrl, { headers: { authorization: `Bearer ${a.token}` }, maxPayload: MAX_FRAME_BYTES, handshakeTimeout: 10_000, perMessageDeflate: false,
      localAddress: `127.0.0.${2 + (a.i % data.sources)}` } as WebSocket.ClientOptions);
    a.ws = ws;
    ws.on('open', () => {
      ws.send(encodeMessage({ type: 'hello', agent_version: 'fleet-load', applied_version: a.applied, served_targets: [data.target] }));
      done();
    });
    ws.on('message', (raw, isBinary) => {
      if (!isBinary) return;
      const m = decodeGatewayMessage(raw as Buffer);
      if (m.type !== 'snapshot') return;
      a.attempt = 0;
      a.snapshots++;
      a.live = true;
      a.liveAt = now();
      const p = m.policy;
      const reset = p.fleet_epoch !== undefined && a.epoch !== undefined && p.fleet_epoch !== a.epoch;
      if (p.version < a.applied && !reset) return ws.send(encodeMessage({ type: 'nack', version: p.version, error: 'older than applied' }));
      a.applied = p.version;
      a.epoch = p.fleet_epoch ?? a.epoch;
      if (a.reachedAt === 0 && a.applied >= want) a.reachedAt = a.liveAt;
      ws.send(encodeMessage({ type: 'ack', version: p.version }));
    });
    ws.on('error', () => done());
    ws.on('close', () => {
      done();
      if (a.ws === ws) {
        a.ws = undefined;
        a.live = false;
      }
      if (!stopping) setTimeout(() => void connect(a), reconnectDelay(a.attempt++, 500, 30_000));
    });
  });
}

/** Keepalive pings (15 s, as the link) and status every statusMs, spread over the period. */
function startChatter(): void {
  const tickMs = 250;
  let tick = 0;
  chatter = setInterval(() => {
    tick++;
    const statusSlots = Math.max(1, Math.round(data.statusMs / tickMs));
    const pingSlots = Math.round(15_000 / tickMs);
    for (const a of agents) {
      if (a.ws?.readyState !== WebSocket.OPEN) continue;
      if ((a.i + tick) % pingSlots === 0) a.ws.send(PING_TEXT);
      if ((a.i + tick) % statusSlots === 0) a.ws.send(encodeMessage({ type: 'status', status: { sessions: [], luns: [{ lun: 0, state: 'ok' }], cache: { dirty_bytes: 0 } } }));
    }
  }, tickMs);
}

async function until(ok: () => boolean): Promise<void> {
  while (!ok()) await sleep(20);
}

async function handle(r: AgentsRequest): Promise<AgentsAnswer> {
  switch (r.type) {
    case 'connect': {
      want = r.want;
      let next = 0;
      await Promise.all(Array.from({ length: Math.min(r.parallel, agents.length) }, async () => {
        while (next < agents.length) await connect(agents[next++]!);
      }));
      await until(() => agents.every((a) => a.reachedAt > 0));
      return { seq: r.seq };
    }
    case 'want':
      want = r.want;
      for (const a of agents) {
        a.reachedAt = a.applied >= want ? now() : 0;
        a.snapshots = 0;
      }
      return { seq: r.seq, connects: agents.reduce((x, a) => x + a.connects, 0) };
    case 'reached':
      await until(() => agents.every((a) => a.reachedAt > 0));
      return { seq: r.seq, times: agents.map((a) => a.reachedAt), snapshots: agents.map((a) => a.snapshots) };
    case 'chatter':
      startChatter();
      return { seq: r.seq };
    case 'back':
      // answered by the new gateway: a socket the old one accepted while closing does not count
      await until(() => agents.every((a) => a.live && a.liveAt >= r.since && a.ws?.readyState === WebSocket.OPEN));
      return { seq: r.seq, times: agents.map((a) => a.liveAt), connects: agents.reduce((x, a) => x + a.connects, 0) };
    case 'stop':
      stopping = true;
      clearInterval(chatter);
      for (const a of agents) a.ws?.terminate();
      return { seq: r.seq, connects: agents.reduce((x, a) => x + a.connects, 0) };
  }
}

parentPort!.on('message', (r: AgentsRequest) => void handle(r).then((a) => parentPort!.postMessage(a)));
