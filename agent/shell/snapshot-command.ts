// `/backstores/object/NAME snapshot create|list|delete [SNAP]` (DESIGN.md contracts): acts on the running volume
// through the agent (agent/sites/snapshots.ts); the configuration does not change.
import { storageObjectPath, type Plugin } from '../config/schema.js';
import { createSnapshot, deleteSnapshot, renderSnapshots, snapshotsOf } from '../sites/snapshots.js';
import type { CommandSpec } from './commands.js';
import { ShellError } from './host.js';
import { findSo } from './tree.js';

const err = (msg: string): never => {
  throw new ShellError(msg);
};

export const snapshotCommand: CommandSpec = {
  params: [{ name: 'action', required: true, values: () => ['create', 'list', 'delete'] }, { name: 'name' }],
  help: 'Snapshots of this object volume: "snapshot create NAME" (crash-consistent: everything written before it), "snapshot list", "snapshot delete NAME" (refused while clones depend on it).',
  run(ctx, a) {
    const so = findSo(ctx.draft, ctx.node.ids.plugin as Plugin, ctx.node.ids.so!) ?? err('Storage object no longer exists.');
    const path = storageObjectPath(so);
    const action = a.action!;
    if (!['create', 'list', 'delete'].includes(action)) err(`Unknown snapshot action '${action}': use create, list or delete.`);
    if (action !== 'list' && !a.name) err(`Missing snapshot name: snapshot ${action} NAME`);
    if (action === 'list' && a.name) err('snapshot list takes no name.');
    if (!ctx.host.backstore) err('Snapshots need the running agent (start it with `outpost agent`).');
    if (action === 'delete') {
      // A read-only export reads the snapshot's objects without recording itself in the bucket: refuse here.
      const prefix = so.prefix ?? `${so.name}/`;
      const norm = prefix.endsWith('/') ? prefix : `${prefix}/`;
      const users = ctx.draft.storage_objects.filter((x) => x.plugin === 'object' && x.readonly === true
        && (x.source === `${so.name}@${a.name}` || x.source === `${norm}@${a.name}`) && x.bucket === so.bucket);
      if (users.length) err(`Snapshot ${a.name} is exported read-only by ${users.map((u) => storageObjectPath(u)).join(', ')}; delete that first.`);
    }
    return async () => {
      const ops = snapshotsOf(ctx.host.backstore!(path), path);
      if (typeof ops === 'string') err(`Cannot use snapshots of ${path}: ${ops}.`);
      const v = ops as Exclude<typeof ops, string>;
      try {
        if (action === 'create') {
          const s = await createSnapshot(v, path, a.name!);
          ctx.out.push(`Created snapshot ${s.name} of ${path} (generation ${s.generation}).`);
        } else if (action === 'delete') {
          const n = await deleteSnapshot(v, path, a.name!);
          ctx.out.push(`Deleted snapshot ${a.name} of ${path} (${n} objects deleted from the bucket).`);
        } else {
          ctx.out.push(...renderSnapshots(path, await v.list()));
        }
      } catch (e) {
        err((e as Error).message);
      }
    };
  },
};
