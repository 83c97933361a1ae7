// Dumping the tree as saveconfig.json (rtslib-fb RTSRoot.dump + save_to_file: sorted keys, indent 2).
// Managed (gateway) node ACLs are runtime state from the cached policy and are never written.
import type { RootConfig } from './schema.js';

export function dumpConfig(root: RootConfig): RootConfig {
  const out = structuredClone(root);
  for (const t of out.targets) {
    for (const tpg of t.tpgs ?? []) {
      if (Array.isArray(tpg.node_acls)) tpg.node_acls = tpg.node_acls.filter((a) => !a.outpost_managed);
    }
  }
  return out;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (typeof v === 'object' && v !== null) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) o[k] = sortKeys((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

export function serializeConfig(root: RootConfig): string {
  return JSON.stringify(sortKeys(dumpConfig(root)), null, 2) + '\n';
}
