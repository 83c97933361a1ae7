// Dumping the tree as saveconfig.json (rtslib-fb RTSRoot.dump + save_to_file: sorted keys, indent 2).
// Managed (gateway) node ACLs are runtime state from the cached policy and are never written.
import { redactIscsiUrl } from '../initiator/url.js';
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
  const out = dumpConfig(root);
  // An import URL's CHAP secret went to the state dir when the LUN was created (docs/import.md): never to the file.
  for (const so of out.storage_objects) if (typeof so.import === 'string') so.import = redactIscsiUrl(so.import);
  return JSON.stringify(sortKeys(out), null, 2) + '\n';
}
