// A shard's view of the fleet store: every Store call goes to the coordinator Durable Object (the one
// SQLite database of the fleet) over Workers RPC. Arguments and results are plain data (Maps included).
import type { Store } from '../store.js';

/**
 * What a shard may ask of the coordinator: authenticating agents, their reports, and the reads that build
 * snapshots. Policy writes are not among them: they arrive as REST requests at the coordinator only.
 */
export const SHARD_STORE_METHODS = new Set<string>([
  'findAgentByTokenHash', 'getAgent', 'updateAgent', 'updateAgents', 'setInventory', 'getInventory',
  'assignedTargets', 'fleetView', 'policyVersion', 'fleetEpoch', 'kdfSalt', 'policyFor',
]);

export type StoreCall = (method: string, args: unknown[]) => Promise<unknown>;

export function remoteStore(call: StoreCall): Store {
  return new Proxy({} as Store, {
    get(_target, name) {
      // not a thenable: `await store` must not call through
      if (typeof name !== 'string' || name === 'then') return undefined;
      if (!SHARD_STORE_METHODS.has(name)) return () => Promise.reject(new Error(`the store call ${name} is not available on a shard`));
      return (...args: unknown[]) => call(name, args);
    },
  });
}
