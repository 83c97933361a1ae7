// Outpost tunnel protocol (docs/tunnels.md): control messages on an agent-dialed WebSocket, before it carries one iSCSI connection.
// Uint8Array/DataView only: the relay (gateway/relay) and the agent (agent/tunnel) share this file.
//
// One WebSocket = one future iSCSI connection, never multiplexed. The agent opens it and sends HELLO
// (version, token, the target names it serves through this tunnel); the relay answers READY (or ERROR
// and closes). The connection then waits idle in the relay's pool until an initiator arrives: the relay
// sends BIND (initiator connection N and its address), and from then on every binary message in either
// direction is raw iSCSI bytes — no header, so no copy on the data path. The end of the iSCSI
// connection is the end of the WebSocket (close code CloseCode.*).

export const TUNNEL_VERSION = 1;
/** Largest control message either side accepts: a token and a few hundred IQNs fit easily. */
export const MAX_CONTROL_MESSAGE = 64 * 1024;
/** Largest data message: one iSCSI PDU burst (the agent coalesces writes up to this). */
export const MAX_DATA_MESSAGE = 4 * 1024 * 1024;

export const MessageType = {
  HELLO: 0x01,
  READY: 0x02,
  BIND: 0x03,
  ERROR: 0x04,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** WebSocket close codes (4000–4999 are for applications, RFC 6455 §7.4.2). */
export const CloseCode = {
  NORMAL: 1000,
  PROTOCOL: 4400,
  UNAUTHORIZED: 4401,
  LIMIT: 4429,
  SHUTDOWN: 4503,
} as const;

export type TunnelMessage =
  | { type: typeof MessageType.HELLO; version: number; token: string; targets: string[] }
  | { type: typeof MessageType.READY; relay: string }
  | { type: typeof MessageType.BIND; connection: number; initiator: string }
  | { type: typeof MessageType.ERROR; code: string; message: string };

export class TunnelProtocolError extends Error {
  constructor(readonly code: 'TRUNCATED' | 'TOO_LARGE' | 'UNKNOWN_TYPE' | 'BAD_VERSION' | 'TRAILING', message: string) {
    super(message);
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

class Writer {
  private parts: Uint8Array[] = [];
  private n = 0;
  u8(v: number): this {
    return this.raw(Uint8Array.of(v));
  }
  u32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0);
    return this.raw(b);
  }
  str(s: string): this {
    const b = enc.encode(s);
    if (b.length > 0xffff) throw new TunnelProtocolError('TOO_LARGE', 'string longer than 65535 bytes');
    return this.raw(Uint8Array.of(b.length >> 8, b.length & 0xff)).raw(b);
  }
  raw(b: Uint8Array): this {
    this.parts.push(b);
    this.n += b.length;
    return this;
  }
  done(): Uint8Array {
    const out = new Uint8Array(this.n);
    let o = 0;
    for (const p of this.parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
}

class Reader {
  private o = 0;
  private readonly view: DataView;
  constructor(private readonly b: Uint8Array) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  private need(n: number): void {
    if (this.o + n > this.b.length) throw new TunnelProtocolError('TRUNCATED', 'tunnel message truncated');
  }
  u8(): number {
    this.need(1);
    return this.b[this.o++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.o);
    this.o += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.o);
    this.o += 4;
    return v;
  }
  str(): string {
    const n = this.u16();
    this.need(n);
    const s = this.b.subarray(this.o, this.o + n);
    this.o += n;
    try {
      return dec.decode(s);
    } catch {
      throw new TunnelProtocolError('TRUNCATED', 'string is not UTF-8');
    }
  }
  end(): void {
    if (this.o !== this.b.length) throw new TunnelProtocolError('TRAILING', 'trailing bytes after tunnel message');
  }
}

export function encodeMessage(m: TunnelMessage): Uint8Array {
  const w = new Writer().u8(m.type);
  switch (m.type) {
    case MessageType.HELLO:
      w.u8(m.version).str(m.token).u32(m.targets.length);
      for (const t of m.targets) w.str(t);
      break;
    case MessageType.READY:
      w.str(m.relay);
      break;
    case MessageType.BIND:
      w.u32(m.connection).str(m.initiator);
      break;
    case MessageType.ERROR:
      w.str(m.code).str(m.message);
      break;
  }
  const out = w.done();
  if (out.length > MAX_CONTROL_MESSAGE) throw new TunnelProtocolError('TOO_LARGE', `control message of ${out.length} bytes exceeds ${MAX_CONTROL_MESSAGE}`);
  return out;
}

/** Decodes one control message; throws TunnelProtocolError on anything malformed or oversized. */
export function decodeMessage(b: Uint8Array): TunnelMessage {
  if (b.length > MAX_CONTROL_MESSAGE) throw new TunnelProtocolError('TOO_LARGE', `control message of ${b.length} bytes exceeds ${MAX_CONTROL_MESSAGE}`);
  const r = new Reader(b);
  const type = r.u8();
  let m: TunnelMessage;
  switch (type) {
    case MessageType.HELLO: {
      const version = r.u8();
      if (version !== TUNNEL_VERSION) throw new TunnelProtocolError('BAD_VERSION', `tunnel protocol version ${version} (this side speaks ${TUNNEL_VERSION})`);
      const token = r.str();
      const n = r.u32();
      if (n > 4096) throw new TunnelProtocolError('TOO_LARGE', `${n} targets in HELLO`);
      const targets: string[] = [];
      for (let i = 0; i < n; i++) targets.push(r.str());
      m = { type, version, token, targets };
      break;
    }
    case MessageType.READY:
      m = { type, relay: r.str() };
      break;
    case MessageType.BIND:
      m = { type, connection: r.u32(), initiator: r.str() };
      break;
    case MessageType.ERROR:
      m = { type, code: r.str(), message: r.str() };
      break;
    default:
      throw new TunnelProtocolError('UNKNOWN_TYPE', `unknown tunnel message type 0x${type.toString(16)}`);
  }
  r.end();
  return m;
}
