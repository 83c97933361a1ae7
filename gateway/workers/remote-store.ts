// A shard's view of the fleet store: every Store call goes to the coordinator Durable Object (the one
// SQLite database of the fleet) over Workers RPC. Arguments and results are plain data (Maps included).
import type { AgentRecord, Store } from '../store.js';

/**
 * What a shard may ask of the coordinator: authenticating agents, their reports, and the reads that build
 * snapshots. Policy writes are not among them: they arrive as REST requests at the coordinator only.
 */
export const SHARD_STORE_METHODS = new Set<string>([
  'findAgentByTokenHash', 'getAgent', 'updateAgent', 'updateAgents', 'setInventory', 'getInventory',
  'assignedTargets', 'fleetView', 'policyVersion', 'fleetEpoch', 'kdfSalt', 'policyFor',
]);

export type StoreCall = (method: string, args: unknown[]) => Promise<unknown>;

/** What the coordinator answers when it admits a socket: its agent, and the targets assigned to it then. */
export interface Admitted { readonly agent: AgentRecord; readonly assigned: string[] }

/**
 * The store over `call`, plus `seed`: the answer of an admission, used once by the hello that follows
 * (its revocation check and its assignment log), so a connect costs the coordinator one call, not three.
 * Reusing it is safe: the admission listed the socket, so a revocation after it reaches this shard.
 */
export function remoteStore(call: StoreCall): { store: Store; seed(a: Admitted): void } {
  const seeded = new Map<string, { agent?: AgentRecord; assigned?: string[] }>();
  const store = new Proxy({} as Store, {
    get(_target, name) {
      // not a thenable: `await store` must not call through
      if (typeof name !== 'string' || name === 'then') return undefined;
      if (!SHARD_STORE_METHODS.has(name)) return () => Promise.reject(new Error(`the store call ${name} is not available on a shard`));
      if (name === 'getAgent' || name === 'assignedTargets') {
        return (id: string) => {
          const s = seeded.get(id);
          const v = name === 'getAgent' ? s?.agent : s?.assigned;
          if (!s || v === undefined) return call(name, [id]);
          if (name === 'getAgent') delete s.agent;
          else delete s.assigned;
          if (!s.agent && !s.assigned) seeded.delete(id);
          return Promise.resolve(v);
        };
      }
      return (...args: unknown[]) => call(name, args);
    },
  });
  return { store, seed: (a) => void seeded.set(a.agent.id, { agent: a.agent, assigned: a.assigned }) };
}
