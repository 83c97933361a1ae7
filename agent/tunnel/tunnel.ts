// One configured tunnel (a path of one TPG through one relay): a small pool of pre-dialed idle tunnel
// connections, replenished as the relay binds them to initiator connections, redialed with exponential
// backoff and jitter (1 s .. 30 s) forever. Each bound connection is served by the fabric like a portal
// socket, with the advertised relay portal as its local address (so discovery answers with it).
import { existsSync, readFileSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { readFile } from 'node:fs/promises';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { advertisedPortal } from '../config/tunnels.js';
import type { PortalAddress } from '../iscsi/target-registry.js';
import type { Logger } from '../lib/log.js';
import { MAX_DATA_MESSAGE, MessageType, TUNNEL_VERSION, decodeMessage, encodeMessage } from '../../shared/tunnel-protocol.js';
import { WebSocketDuplex, type DuplexCounters } from './ws-duplex.js';

export interface TunnelSpec {
  url: string;
  advertise: string; // HOST:PORT the relay's initiators use
  token_file: string;
  source?: string; // local address to dial from (one tunnel per uplink)
  ca_file?: string; // pin this CA instead of the system store (wss://)
}

/** What a tunnel needs of the fabric: agent/iscsi/server.ts IscsiServer.serveConnection. */
export interface StreamHost {
  serveConnection(stream: Duplex, local: PortalAddress, remote: string): void;
}

export interface TunnelStatus {
  url: string;
  advertise: string;
  source?: string;
  state: 'connected' | 'connecting' | 'retrying' | 'stopped';
  idle: number;
  bound: number;
  retryInMs?: number;
  lastError?: string;
  latencyMs?: number;
  rxBytes: number;
  txBytes: number;
}

export interface TunnelOptions {
  poolSize?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  pingIntervalMs?: number;
}

/** Backoff before redial attempt `failures` (1-based): doubling from min to max, ±20 % jitter, clamped. */
export function backoffMs(failures: number, min = 1000, max = 30_000, random = Math.random): number {
  const base = Math.min(max, min * 2 ** Math.max(0, failures - 1));
  return Math.round(Math.min(max, Math.max(min, base * (0.8 + 0.4 * random()))));
}

/** The OS trust store (Debian/Ubuntu, RHEL, Alpine/macOS paths) on top of Node's bundled roots, read once. */
const SYSTEM_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt', '/etc/ssl/cert.pem'];
let systemCa: Array<string | Buffer> | undefined;
function systemTrust(): Array<string | Buffer> {
  if (!systemCa) {
    const bundle = SYSTEM_BUNDLES.find((p) => existsSync(p));
    systemCa = [...rootCertificates, ...(bundle ? [readFileSync(bundle)] : [])];
  }
  return systemCa;
}

// RFC 6455 §5.3 asks clients to mask so browsers cannot poison proxy caches; an agent is no browser,
// and a zero mask lets both ends skip XOR-ing every data byte (ws detects it on both sides).
const zeroMask = (mask: Uint8Array) => void mask.fill(0);

export class Tunnel {
  private readonly idle = new Set<WebSocket>();
  private readonly dialing = new Set<WebSocket>();
  private readonly bound = new Set<Duplex>();
  private readonly counters: DuplexCounters = { rx: 0, tx: 0 };
  private readonly local: PortalAddress;
  private readonly poolSize: number;
  private failures = 0;
  private retryTimer?: NodeJS.Timeout;
  private retryAt = 0;
  private pingTimer?: NodeJS.Timeout;
  private lastError?: string;
  private latencyMs?: number;
  private stopped = false;
  private readonly caPem?: Buffer;
  private readonly pingSent = new WeakMap<WebSocket, number>();

  constructor(
    readonly spec: TunnelSpec,
    private readonly targets: string[],
    private readonly host: StreamHost,
    private readonly log: Logger,
    private readonly opts: TunnelOptions = {},
  ) {
    this.local = advertisedPortal(spec.advertise);
    this.poolSize = opts.poolSize ?? 3;
    // Read once, at create time: a missing CA file is a configuration error, not a redial reason.
    this.caPem = spec.ca_file ? readFileSync(spec.ca_file) : undefined;
  }

  start(): void {
    this.fill();
    this.pingTimer = setInterval(() => this.ping(), this.opts.pingIntervalMs ?? 10_000);
    setTimeout(() => this.ping(), 500).unref(); // a first latency figure soon after connecting
    this.pingTimer.unref();
  }

  status(): TunnelStatus {
    const retrying = this.retryTimer !== undefined;
    return {
      url: this.spec.url, advertise: this.spec.advertise, source: this.spec.source,
      state: this.stopped ? 'stopped' : this.idle.size > 0 ? 'connected' : retrying ? 'retrying' : 'connecting',
      idle: this.idle.size, bound: this.bound.size,
      retryInMs: retrying ? Math.max(0, this.retryAt - Date.now()) : undefined,
      lastError: this.lastError, latencyMs: this.latencyMs, rxBytes: this.counters.rx, txBytes: this.counters.tx,
    };
  }

  /** Closes the pool and every connection carried through this tunnel (the path is gone). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pingTimer);
    for (const ws of [...this.idle, ...this.dialing]) ws.terminate();
    for (const d of this.bound) d.destroy();
    this.idle.clear();
    this.dialing.clear();
  }

  private fill(): void {
    if (this.stopped || this.retryTimer) return;
    while (this.idle.size + this.dialing.size < this.poolSize) this.dial();
  }

  private fail(why: string): void {
    // Every pooled connection fails together when a relay or an uplink goes: count that as one failure,
    // and keep its cause (not the "closed before established" of the dials this one cancels).
    if (this.stopped || this.retryTimer) return;
    this.lastError = why;
    for (const ws of this.dialing) ws.terminate();
    this.dialing.clear();
    this.failures++;
    const delay = backoffMs(this.failures, this.opts.minBackoffMs, this.opts.maxBackoffMs);
    this.retryAt = Date.now() + delay;
    this.log.warn({ tunnel: this.spec.url, err: why, retryInMs: delay }, 'tunnel connection failed; redialing');
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.fill();
    }, delay);
  }

  private dial(): void {
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.spec.url, {
        localAddress: this.spec.source,
        maxPayload: MAX_DATA_MESSAGE,
        perMessageDeflate: false,
        handshakeTimeout: 10_000,
        generateMask: zeroMask,
        // A pinned CA replaces every other trust anchor: only that relay's certificate chain is accepted.
        ...(this.caPem ? { ca: this.caPem } : this.spec.url.startsWith('wss:') ? { ca: systemTrust() } : {}),
      });
    } catch (e) {
      return this.fail((e as Error).message);
    }
    this.dialing.add(ws);
    let ready = false;
    let boundHere = false;
    ws.on('open', () => {
      void this.token().then(
        (token) => {
          if (ws.readyState === ws.OPEN) ws.send(encodeMessage({ type: MessageType.HELLO, version: TUNNEL_VERSION, token, targets: this.targets }));
        },
        (e: Error) => {
          ws.terminate();
          this.fail(`token_file ${this.spec.token_file}: ${e.message}`);
        },
      );
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (boundHere) return; // the duplex owns the stream
      let m;
      try {
        if (!isBinary) throw new Error('text message');
        m = decodeMessage(data);
      } catch (e) {
        ws.terminate();
        return this.fail(`relay sent a malformed message: ${(e as Error).message}`);
      }
      if (m.type === MessageType.ERROR) {
        ws.terminate();
        return this.fail(`relay refused: ${m.code}: ${m.message}`);
      }
      if (m.type === MessageType.READY && !ready) {
        ready = true;
        this.dialing.delete(ws);
        this.idle.add(ws);
        this.failures = 0;
        this.lastError = undefined;
        return;
      }
      if (m.type === MessageType.BIND && ready) {
        boundHere = true;
        this.idle.delete(ws);
        const stream = new WebSocketDuplex(ws, this.counters);
        this.bound.add(stream);
        stream.once('close', () => this.bound.delete(stream));
        this.host.serveConnection(stream, this.local, `${m.initiator} via ${this.spec.url}`);
        this.fill();
        return;
      }
      ws.terminate();
      this.fail(`unexpected tunnel message type ${m.type}`);
    });
    ws.on('pong', () => {
      const sent = this.pingSent.get(ws);
      if (sent) this.latencyMs = Date.now() - sent;
      this.pingSent.delete(ws);
    });
    ws.on('error', (e) => {
      if (!boundHere) this.fail(e.message);
    });
    ws.on('close', (code, reason) => {
      const wasIdle = this.idle.delete(ws);
      const wasDialing = this.dialing.delete(ws);
      if (boundHere || this.stopped) return;
      if (wasDialing && !ready) this.fail(`closed before ready (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
      else if (wasIdle) {
        this.lastError = `idle connection closed by the relay (${code})`;
        this.fill();
      }
    });
  }

  /** Reads the token (and a pinned CA) at every dial, so rotating the file needs no restart. */
  private async token(): Promise<string> {
    const t = (await readFile(this.spec.token_file, 'utf8')).trim();
    if (!t) throw new Error('empty token');
    return t;
  }

  /** RTT of a WebSocket ping on one idle connection; an idle one that never answered is dead. */
  private ping(): void {
    for (const ws of this.idle) {
      const sent = this.pingSent.get(ws);
      if (sent && Date.now() - sent > 2 * (this.opts.pingIntervalMs ?? 10_000)) {
        ws.terminate();
        continue;
      }
      if (!sent) {
        this.pingSent.set(ws, Date.now());
        ws.ping();
      }
    }
  }
}
