// What the Workers adapter is given: the Durable Object bindings and secrets of wrangler.toml, and a logger.
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
  /** info (default), warn or error: at fleet scale every hello and ack is an info line. */
  OUTPOST_LOG_LEVEL?: string;
}

export { consoleLogger, envLogger } from '../console-logger.js';
