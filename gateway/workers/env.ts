// What the Workers adapter is given: the Durable Object bindings and secrets of wrangler.toml, and a logger.
import type { GatewayLogger } from '../hub.js';
import type { FleetObject } from './fleet-object.js';
import type { FleetShard } from './shard-object.js';

export interface Env {
  /** The coordinator: one per fleet, the fleet's SQLite store and the REST API. */
  FLEET: DurableObjectNamespace<FleetObject>;
  /** The shards: the agents' sockets, spread over OUTPOST_SHARDS objects by a hash of the agent token. */
  SHARD: DurableObjectNamespace<FleetShard>;
  OUTPOST_ADMIN_TOKEN?: string;
  OUTPOST_SECRET_KEY?: string;
  OUTPOST_FLEET?: string;
  /** Number of shards (default 8); changing it moves agents between shards as they reconnect. */
  OUTPOST_SHARDS?: string;
}

/** JSON lines on the console (Workers logs); callers never pass secrets. */
export const consoleLogger: GatewayLogger = {
  info: (obj, msg) => console.log(JSON.stringify({ level: 'info', msg, ...obj })),
  warn: (obj, msg) => console.warn(JSON.stringify({ level: 'warn', msg, ...obj })),
  error: (obj, msg) => console.error(JSON.stringify({ level: 'error', msg, ...obj })),
};
