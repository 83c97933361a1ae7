// Cloudflare Workers entry of the gateway: every request goes to the fleet's Durable Object, which runs
// the same app as the Node entry (gateway/workers/fleet-object.ts).
import { FleetObject, type Env } from './workers/fleet-object.js';

export { FleetObject };

const MAX_BODY = 64 * 1024;

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const stub = env.FLEET.get(env.FLEET.idFromName(env.OUTPOST_FLEET ?? 'default'));
    if (req.body === null) return stub.fetch(req);
    // Buffer the (small) body here: the app may answer 4xx without reading it, and a streamed body
    // left unread across the Durable Object boundary fails the request stream. The limit is checked
    // while reading, as on Node, so a chunked body without Content-Length is never held whole.
    const tooBig = (): Response => Response.json({ error: `request body exceeds ${MAX_BODY} bytes` }, { status: 413 });
    if (Number(req.headers.get('content-length') ?? 0) > MAX_BODY) return tooBig();
    const body = await readLimited(req.body, MAX_BODY);
    if (!body) return tooBig();
    return stub.fetch(new Request(req, { body }));
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
