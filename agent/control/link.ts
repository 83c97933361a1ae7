// The agent's control link to the gateway (see shared/control-protocol.ts): hello with the last applied
// version, apply each snapshot atomically (ack) or keep the old one (nack), report status, and
// reconnect with exponential backoff and full jitter.
import { Packr } from 'msgpackr';
import WebSocket from 'ws';
import { CONTROL_PATH, MAX_FRAME_BYTES, PACKR_OPTIONS, PING_TEXT, decodeGatewayMessage, encodeMessage, type AgentMessage, type Inventory } from '../../shared/control-protocol.js';
import { checkRequestArgs, type AgentRequestOp } from '../../shared/control-commands.js';
import type { PolicySnapshot } from '../../shared/policy.js';
import { validatePolicyAsync } from '../config/managed.js';
import type { Logger } from '../lib/log.js';
import { loadCachedPolicy, saveCachedPolicy } from './policy-cache.js';

export { loadCachedPolicy } from './policy-cache.js';

// The agent runs on Node only, so it decodes with msgpackr's standard build (native string decoding via
// msgpackr-extract when present): about twice as fast on a 1 MiB snapshot as the no-eval build the
// Workers gateway needs, and the decode is one synchronous step on the event loop.
const nodePackr = new Packr(PACKR_OPTIONS);
const unpack = (frame: Uint8Array): unknown => nodePackr.unpack(frame);

/** What the link needs from the running agent (agent/main.ts provides it). */
export interface ManagedAgent {
  /** Validates and swaps in the policy; throws (and keeps the old one) when it is invalid. */
  setManagedPolicy(p: PolicySnapshot): void;
  servedTargets(): string[];
  /** TPG LUNs and local ACLs per target, so the gateway can refuse what cannot apply. */
  inventory?(): Inventory;
  status(): object;
  /** Runs one control command (shared/control-commands.ts); absent: every command is refused. */
  command?(op: string, args: Record<string, unknown>): Promise<unknown>;
}

export interface ControlLinkOptions {
  /** Gateway base URL (http(s)://host:port or ws(s)://…); /v1/connect is appended when no path is given.
   *  Several: one link is kept up, to the first that answers; a failed one moves it to the next at once. */
  readonly url: string | readonly string[];
  readonly token: string;
  readonly stateDir: string;
  readonly agent: ManagedAgent;
  readonly log: Logger;
  readonly agentVersion?: string;
  /** How often the status is looked at (default 5000); it is sent only when it changed, or as a heartbeat. */
  readonly statusIntervalMs?: number;
  /** An unchanged status is still sent this often (default 60000), so the gateway's last_seen moves. */
  readonly statusHeartbeatMs?: number;
  readonly minBackoffMs?: number; // default 500
  readonly maxBackoffMs?: number; // default 30000
  readonly keepaliveMs?: number; // default 15000; no traffic for 3× this → reconnect
}

export interface ControlLink {
  /** True while a socket to the gateway is open. */
  readonly connected: boolean;
  /** Version of the last snapshot applied (0 when none). */
  readonly appliedVersion: number;
  /** One typed request to the gateway (shared/control-commands.ts AGENT_REQUEST_OPS), answered by its reply. */
  request(op: AgentRequestOp, args: Record<string, unknown>, timeoutMs?: number): Promise<unknown>;
  close(): Promise<void>;
}

/** Default period of the status heartbeat (an unchanged status); a changed one is sent at the next look. */
export const STATUS_HEARTBEAT_MS = 60_000;

/**
 * Delay before reconnect attempt `attempt` (0-based): exponential backoff with full jitter, so a fleet
 * that lost its gateway at the same instant comes back spread out, not as one synchronized storm.
 */
export function reconnectDelay(attempt: number, minBackoffMs: number, maxBackoffMs: number): number {
  const cap = Math.min(maxBackoffMs, minBackoffMs * 2 ** Math.min(attempt, 20));
  return Math.round(Math.random() * cap);
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|\[?::1\]?|localhost)$/i;

/** ws(s) URL of the control endpoint; refuses clear-text ws to anything but loopback. */
export function controlUrl(base: string): string {
  const u = new URL(base);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') throw new Error(`gateway URL must be http(s) or ws(s): ${base}`);
  if (u.protocol === 'ws:' && !LOOPBACK.test(u.hostname)) throw new Error(`gateway URL ${u.host} is not loopback: use wss:// (policy carries CHAP secrets)`);
  if (u.pathname === '' || u.pathname === '/') u.pathname = CONTROL_PATH;
  return u.toString();
}

export async function startControlLink(opts: ControlLinkOptions): Promise<ControlLink> {
  const urls = (typeof opts.url === 'string' ? [opts.url] : [...opts.url]).map(controlUrl);
  if (urls.length === 0) throw new Error('no gateway URL');
  let current = 0;
  const { agent, log } = opts;
  const minBackoff = opts.minBackoffMs ?? 500;
  const maxBackoff = opts.maxBackoffMs ?? 30_000;
  const keepalive = opts.keepaliveMs ?? 15_000;
  // The cached policy is applied before the first connect, so a restarted agent admits its initiators
  // while the gateway is unreachable. Hello then carries its version; a cache that cannot be read or
  // applied says 0, so the gateway's snapshot replaces whatever is there.
  let appliedVersion = 0;
  let heldEpoch: string | undefined;
  try {
    const cached = await loadCachedPolicy(opts.stateDir);
    if (cached) {
      await validatePolicyAsync(cached);
      agent.setManagedPolicy(cached);
      appliedVersion = cached.version;
      heldEpoch = cached.fleet_epoch;
      log.info({ version: cached.version, targets: Object.keys(cached.targets).length }, 'cached gateway policy applied');
    }
  } catch (e) {
    log.warn({ err: (e as Error).message }, 'cached gateway policy not applied; waiting for the gateway');
  }

  let ws: WebSocket | undefined;
  let closed = false;
  let attempt = 0;
  let retryTimer: NodeJS.Timeout | undefined;
  let statusTimer: NodeJS.Timeout | undefined;
  let pingTimer: NodeJS.Timeout | undefined;
  let lastTraffic = Date.now();
  let lastServed = '';
  let lastInventory = '';
  // Status on change plus a slow heartbeat: 10,000 agents every 5 s would be 2,000 gateway writes a second.
  let lastStatus = '';
  let lastStatusAt = 0;
  const heartbeat = opts.statusHeartbeatMs ?? STATUS_HEARTBEAT_MS;
  let applying = Promise.resolve();

  // requests to the gateway awaiting their reply; a closed socket fails them (the gateway may never answer)
  const pending = new Map<string, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  let requestSeq = 0;
  const failPending = (why: string): void => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(new Error(why));
    }
  };

  const send = (m: AgentMessage): void => {
    if (ws?.readyState === WebSocket.OPEN) ws.send(encodeMessage(m));
  };

  const inventory = (): Inventory | undefined => {
    try {
      return agent.inventory?.();
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'inventory not available');
      return undefined;
    }
  };

  const sendStatus = (): void => {
    const served = agent.servedTargets();
    const key = served.join('\n');
    const inv = inventory();
    const invKey = inv ? JSON.stringify(inv) : '';
    let status: Record<string, unknown>;
    try {
      status = { ...agent.status() } as Record<string, unknown>;
    } catch (e) {
      status = { error: (e as Error).message };
    }
    const statusKey = JSON.stringify(status);
    const news = key !== lastServed || (inv !== undefined && invKey !== lastInventory) || statusKey !== lastStatus;
    if (!news && Date.now() - lastStatusAt < heartbeat) return;
    try {
      send({ type: 'status', status, ...(key !== lastServed ? { served_targets: served } : {}), ...(inv && invKey !== lastInventory ? { inventory: inv } : {}) });
      lastServed = key;
      lastInventory = invKey;
      lastStatus = statusKey;
      lastStatusAt = Date.now();
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'status not sent');
    }
  };

  const apply = async (p: PolicySnapshot): Promise<void> => {
    try {
      // Never go back: a lower version is stale or replayed, unless the fleet was reset (new epoch).
      const reset = p.fleet_epoch !== undefined && heldEpoch !== undefined && p.fleet_epoch !== heldEpoch;
      if (p.version < appliedVersion && !reset) {
        throw new Error(`policy version ${p.version} is older than version ${appliedVersion} already applied; refused (a lower version is accepted only from a reset fleet, with a new fleet_epoch)`);
      }
      await validatePolicyAsync(p); // yields, so a huge snapshot does not stall iSCSI I/O
      agent.setManagedPolicy(p);
    } catch (e) {
      const error = (e as Error).message || String(e);
      log.warn({ version: p.version, err: error }, 'gateway policy rejected; keeping the current one');
      return send({ type: 'nack', version: p.version, error });
    }
    appliedVersion = p.version;
    heldEpoch = p.fleet_epoch ?? heldEpoch;
    try {
      await saveCachedPolicy(opts.stateDir, p);
    } catch (e) {
      log.error({ err: (e as Error).message }, 'could not cache the applied policy');
    }
    log.info({ version: p.version, targets: Object.keys(p.targets).length }, 'gateway policy applied');
    send({ type: 'ack', version: p.version });
  };

  const stopTimers = (): void => {
    clearInterval(statusTimer);
    clearInterval(pingTimer);
    statusTimer = pingTimer = undefined;
  };

  const scheduleReconnect = (): void => {
    if (closed || retryTimer) return;
    // With several gateways the next one is tried at once; the backoff grows once per full round.
    current = (current + 1) % urls.length;
    const delay = current !== 0 ? Math.round(Math.random() * minBackoff) : reconnectDelay(attempt++, minBackoff, maxBackoff);
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      connect();
    }, delay);
    retryTimer.unref?.();
  };

  const connect = (): void => {
    if (closed) return;
    const url = urls[current]!;
    const sock = new WebSocket(url, { headers: { authorization: `Bearer ${opts.token}` }, maxPayload: MAX_FRAME_BYTES, handshakeTimeout: 10_000 });
    ws = sock;
    sock.on('open', () => {
      lastTraffic = Date.now();
      const served = agent.servedTargets();
      lastServed = served.join('\n');
      const inv = inventory();
      lastInventory = inv ? JSON.stringify(inv) : '';
      sock.send(encodeMessage({ type: 'hello', agent_version: opts.agentVersion ?? '0', applied_version: appliedVersion, served_targets: served, ...(inv ? { inventory: inv } : {}) }));
      log.info({ url, applied_version: appliedVersion }, 'control link connected');
      lastStatus = ''; // a new socket (perhaps a restarted gateway) gets the status once
      statusTimer = setInterval(sendStatus, opts.statusIntervalMs ?? 5000);
      pingTimer = setInterval(() => {
        if (Date.now() - lastTraffic > 3 * keepalive) {
          log.warn({}, 'control link silent; reconnecting');
          sock.terminate();
        } else if (sock.readyState === WebSocket.OPEN) sock.send(PING_TEXT);
      }, keepalive);
    });
    sock.on('message', (data, isBinary) => {
      lastTraffic = Date.now();
      if (!isBinary) return; // "pong"
      let msg;
      try {
        msg = decodeGatewayMessage(data as Buffer, unpack);
      } catch (e) {
        log.warn({ err: (e as Error).message }, 'bad frame from gateway; reconnecting');
        return sock.terminate();
      }
      if (msg.type === 'snapshot') {
        attempt = 0;
        const p = msg.policy;
        applying = applying.then(() => apply(p));
      } else if (msg.type === 'reply') {
        const p = pending.get(msg.id);
        if (!p) return;
        pending.delete(msg.id);
        clearTimeout(p.timer);
        if (msg.ok) p.resolve(msg.result);
        else p.reject(new Error(msg.error ?? 'the gateway refused the request'));
      } else if (msg.type === 'command') {
        // commands run concurrently with policy and each other (a long flush must not hold a ping back)
        const { id, op, args } = msg;
        const answer = agent.command ? agent.command(op, args as Record<string, unknown>) : Promise.reject(new Error('this agent takes no control commands'));
        answer.then(
          (result) => send({ type: 'result', id, ok: true, result: result ?? null }),
          (e: Error) => {
            log.warn({ op, err: e.message }, 'control command failed');
            send({ type: 'result', id, ok: false, error: e.message || String(e) });
          },
        ).catch((e: Error) => log.warn({ op, err: e.message }, 'control command result not sent'));
      }
    });
    sock.on('unexpected-response', (_req, res) => {
      log.error({ status: res.statusCode }, res.statusCode === 401 ? 'gateway refused the agent token' : 'gateway refused the control link');
      sock.terminate();
    });
    sock.on('error', (e) => {
      // a TLS failure (bad certificate, wrong host) will not fix itself by retrying: say so at warn
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (/CERT|SSL|TLS|SELF_SIGNED|HOSTNAME|ERR_TLS/i.test(code + ' ' + e.message)) log.warn({ err: e.message, code, url }, 'control link TLS failure');
      else log.debug({ err: e.message }, 'control link error');
    });
    sock.on('close', (code, reason) => {
      stopTimers();
      failPending('the control link to the gateway closed before the gateway answered');
      if (ws === sock) ws = undefined;
      if (!closed) {
        log.warn({ code, reason: reason.toString() }, 'control link closed; will reconnect');
        scheduleReconnect();
      }
    });
  };

  connect();
  return {
    get connected() {
      return ws?.readyState === WebSocket.OPEN;
    },
    get appliedVersion() {
      return appliedVersion;
    },
    request(op, args, timeoutMs = 30_000) {
      checkRequestArgs(op, args);
      if (ws?.readyState !== WebSocket.OPEN) return Promise.reject(new Error('the agent is not connected to its gateway now; try again once the control link is up'));
      const id = `r${++requestSeq}`;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`the gateway did not answer ${op} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve, reject, timer });
        send({ type: 'request', id, op, args });
      });
    },
    async close() {
      closed = true;
      failPending('the agent is stopping');
      clearTimeout(retryTimer);
      stopTimers();
      const sock = ws;
      if (sock && sock.readyState !== WebSocket.CLOSED) {
        await new Promise<void>((resolve) => {
          sock.once('close', () => resolve());
          sock.close(1000, 'agent stopping');
          setTimeout(() => (sock.terminate(), resolve()), 2000).unref();
        });
      }
      await applying;
    },
  };
}
