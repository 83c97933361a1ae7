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
    // left unread across the Durable Object boundary fails the request stream.
    if (Number(req.headers.get('content-length') ?? 0) > MAX_BODY) return Response.json({ error: `request body exceeds ${MAX_BODY} bytes` }, { status: 413 });
    const body = await req.arrayBuffer();
    if (body.byteLength > MAX_BODY) return Response.json({ error: `request body exceeds ${MAX_BODY} bytes` }, { status: 413 });
    return stub.fetch(new Request(req, { body }));
  },
} satisfies ExportedHandler<Env>;
