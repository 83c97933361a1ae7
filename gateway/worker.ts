// Cloudflare Workers entry of the gateway: every request goes to the fleet's Durable Object, which runs
// the same app as the Node entry (gateway/workers/fleet-object.ts).
import { FleetObject, type Env } from './workers/fleet-object.js';

export { FleetObject };

export default {
  async fetch(req: Request, env: Env): Promise<Response> {
    const stub = env.FLEET.get(env.FLEET.idFromName(env.OUTPOST_FLEET ?? 'default'));
    return stub.fetch(req);
  },
} satisfies ExportedHandler<Env>;
