// Cloudflare Workers entry of the gateway: REST requests go to the fleet's coordinator Durable Object,
// which runs the same app as the Node entry (gateway/workers/fleet-object.ts); agent WebSockets go to one
// of OUTPOST_SHARDS shard objects (gateway/workers/shard-object.ts) chosen by a hash of the agent token,
// so no single object holds every socket and every ack.
import { CONTROL_PATH } from '../shared/control-protocol.js';
import { FleetObject, shardCount, type Env } from './workers/fleet-object.js';
import { FleetShard, SHARD_HEADER } from './workers/shard-object.js';

export { FleetObject, FleetShard };

const MAX_BODY = 64 * 1024;

/** The same agent lands on the same shard at each reconnect; a socket without a token header, anywhere. */
async function shardFor(req: Request, shards: number): Promise<number> {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.get('authorization') ?? '');
  if (!m) return Math.floor(Math.random() * shards);
  const h = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(m[1]!)));
  return (((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0) % shards;
}

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const fleet = env.OUTPOST_FLEET ?? 'default';
    if (new URL(req.url).pathname === CONTROL_PATH && req.headers.get('upgrade')?.toLowerCase() === 'websocket') {
      const index = await shardFor(req, shardCount(env));
      const headers = new Headers(req.headers);
      headers.set(SHARD_HEADER, String(index));
      return env.SHARD.get(env.SHARD.idFromName(`${fleet}#${index}`)).fetch(new Request(req, { headers }));
    }
    const coordinator = env.FLEET.get(env.FLEET.idFromName(fleet));
    if (req.body === null) return coordinator.fetch(req);
    // Buffer the (small) body here: the app may answer 4xx without reading it, and a streamed body
    // left unread across the Durable Object boundary fails the request stream. The limit is checked
    // while reading, as on Node, so a chunked body without Content-Length is never held whole.
    const tooBig = (): Response => Response.json({ error: `request body exceeds ${MAX_BODY} bytes` }, { status: 413 });
    if (Number(req.headers.get('content-length') ?? 0) > MAX_BODY) return tooBig();
    const body = await readLimited(req.body, MAX_BODY);
    if (!body) return tooBig();
    return coordinator.fetch(new Request(req, { body }));
  },
} satisfies ExportedHandler<Env>;

/** The whole body, or undefined as soon as it exceeds `limit` bytes (the rest is not read). */
async function readLimited(stream: ReadableStream<Uint8Array>, limit: number): Promise<Uint8Array | undefined> {
  const reader = stream.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    parts.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}
