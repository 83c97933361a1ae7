// RFC 6455 WebSocket push channel of the dashboard (/ui/api/live): change notices, never data. The page
// re-reads the REST routes a notice names. Runtime-free: the Node adapter (gateway/node/live.ts) and the
// Workers coordinator (gateway/workers/live-sockets.ts) accept the sockets and hand their senders here.
import { safeEqual } from '../crypto.js';
import type { Store } from '../store.js';

export const LIVE_PATH = '/ui/api/live';
/** The subprotocol the server selects; the browser refuses a connection answered without it. */
export const LIVE_PROTOCOL = 'outpost.live.v1';
/**
 * The admin token rides as a second offered subprotocol, `outpost.token.<base64url(token)>`: a browser
 * WebSocket cannot set Authorization, a query string ends up in access logs, and a cookie would let any
 * site the operator visits open the channel (cross-site WebSocket hijacking). The server never echoes it.
 */
export const LIVE_TOKEN_PREFIX = 'outpost.token.';
/** At most one notice per dashboard per window: a burst of acks or statuses becomes one re-read. */
export const LIVE_WINDOW_MS = 300;
/** Dashboards per gateway instance: each notice is a send per socket. */
export const MAX_LIVE_SOCKETS = 64;
/** The page pings every 25 s: a socket silent this long is a dashboard that went away without closing. */
export const LIVE_SILENCE_MS = 60_000;
export const LIVE_PING = 'ping';
export const LIVE_PONG = 'pong';

/** What changed: `agents` (presence, reports, versions, errors, assignments, enrolment), `acls`, `discovery`. */
export type LiveTopic = 'agents' | 'acls' | 'discovery';

export interface LiveMessage {
  readonly type: 'hello' | 'changed';
  readonly topics: readonly LiveTopic[];
  readonly at: string;
}

function fromBase64Url(s: string): string | undefined {
  if (!/^[A-Za-z0-9_-]{1,700}$/.test(s)) return undefined;
  try {
    const bin = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4));
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return undefined;
  }
}

/**
 * The answer to an upgrade's Sec-WebSocket-Protocol header: 'ok' when it offers LIVE_PROTOCOL and the
 * admin token, 401 when the token is missing or wrong, 400 when the token is right but the protocol absent.
 */
export async function checkLiveUpgrade(protocols: string | null | undefined, adminToken: string): Promise<'ok' | 401 | 400> {
  const offered = (protocols ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  const encoded = offered.find((p) => p.startsWith(LIVE_TOKEN_PREFIX));
  const token = encoded === undefined ? undefined : fromBase64Url(encoded.slice(LIVE_TOKEN_PREFIX.length));
  if (token === undefined || !(await safeEqual(token, adminToken))) return 401;
  return offered.includes(LIVE_PROTOCOL) ? 'ok' : 400;
}

export const liveMessage = (type: LiveMessage['type'], topics: readonly LiveTopic[] = []): string =>
  JSON.stringify({ type, topics, at: new Date().toISOString() } satisfies LiveMessage);

/** Anything a notice can be sent on: a `ws` socket on Node, a hibernatable WebSocket on Workers. */
export interface LiveSink { send(msg: string): void }

/**
 * Coalesces changes into notices: the first change after a quiet window goes out within a few ms, later
 * ones wait for the window to end and go together. Does nothing (no timer) while no dashboard listens,
 * so a fleet without open dashboards pays one call per store write.
 */
export class LiveFeed {
  private readonly pending = new Set<LiveTopic>();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastAt = 0;

  /** `sinks` lists the open dashboard sockets at send time (Workers: ctx.getWebSockets, which survives hibernation). */
  constructor(private readonly sinks: () => Iterable<LiveSink>, private readonly windowMs = LIVE_WINDOW_MS) {}

  changed(topic: LiveTopic): void {
    this.pending.add(topic);
    if (this.timer !== undefined) return;
    if (!this.listening()) {
      this.pending.clear();
      return;
    }
    // a few ms even on the leading edge: the writes of one request (ACL, then its version) share a notice
    const wait = Math.max(10, this.lastAt + this.windowMs - Date.now());
    this.timer = setTimeout(() => this.flush(), wait);
  }

  private listening(): boolean {
    return !this.sinks()[Symbol.iterator]().next().done;
  }

  private flush(): void {
    this.timer = undefined;
    this.lastAt = Date.now();
    const msg = liveMessage('changed', [...this.pending]);
    this.pending.clear();
    for (const s of this.sinks()) {
      try {
        s.send(msg);
      } catch {
        // closing: its close handler forgets it
      }
    }
  }

  /** Stops a pending notice (the gateway is stopping). */
  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending.clear();
  }
}

/** Store writes and the topic each one changes; reads pass through untouched. */
const WRITES: Partial<Record<keyof Store, LiveTopic>> = {
  createAgent: 'agents',
  updateAgent: 'agents',
  updateAgents: 'agents',
  deleteAgent: 'agents',
  assign: 'agents',
  unassign: 'agents',
  putAcl: 'acls',
  deleteAcl: 'acls',
  putDiscoveryAuth: 'discovery',
};

/**
 * The store, telling `feed` after each committed write. Everything the dashboard shows is written here
 * (agents' hellos, acks, nacks, statuses and disconnects through the batched reports; REST changes), on
 * Node and on the Workers coordinator, whose store the shards write through: one hook for both runtimes.
 */
export function watchStore(store: Store, feed: LiveFeed): Store {
  // one wrapper per method, made once: the store is on the fleet's hot path (an ack is a call)
  const methods = new Map<PropertyKey, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      let m = methods.get(prop);
      if (m === undefined) {
        const topic = typeof prop === 'string' ? WRITES[prop as keyof Store] : undefined;
        const fn = v as (...a: unknown[]) => Promise<unknown>;
        m = topic === undefined ? fn.bind(target) : async (...args: unknown[]) => {
          const r = await fn.apply(target, args);
          feed.changed(topic);
          return r;
        };
        methods.set(prop, m);
      }
      return m;
    },
  });
}
