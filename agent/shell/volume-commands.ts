// Object volume commands that act on the running agent (DESIGN.md contracts): `/backstores/object/NAME snapshot
// create|list|delete [SNAP]` (agent/sites/snapshots.ts) and `/backstores/object delete NAME destroy=true`.
import { storageObjectPath, type Plugin, type RootConfig } from '../config/schema.js';
import { createSnapshot, deleteSnapshot, renderSnapshots, snapshotsOf } from '../sites/snapshots.js';
import { checkDestroy, destroyVolume } from '../sites/clone.js';
import { deleteSoRefs, type CommandSpec } from './commands.js';
import { parseBool } from './values.js';
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

/** `/backstores/object delete NAME [destroy=true]`: like targetcli's delete; destroy also empties the volume's prefix. */
export const objectDelete: CommandSpec = {
  params: [{ name: 'name', required: true, values: (n) => n.children().map((c) => c.name) }, { name: 'destroy', values: () => ['true', 'false'] }],
  help: 'Deletes the object storage object and the LUNs using it; the volume stays in the bucket unless destroy=true (refused while clones depend on its snapshots).',
  run(ctx, a) {
    const so = findSo(ctx.draft, 'object', a.name!) ?? err(`No storage object named ${a.name}.`);
    const path = storageObjectPath(so);
    const drop = (root: RootConfig): void => {
      root.storage_objects = root.storage_objects.filter((s) => !(s.plugin === 'object' && s.name === so.name));
      deleteSoRefs(root, path);
    };
    if (!parseBool(a.destroy, false, 'destroy') || so.readonly) {
      drop(ctx.draft);
      ctx.out.push(`Deleted storage object ${a.name}.`);
      return;
    }
    if (!ctx.host.backstore) err('destroy=true needs the running agent (start it with `outpost agent`).');
    const role = ctx.host.backstore!(path)?.stats?.().lease_role;
    if (role !== 'writer') err(`Cannot destroy ${path}: this agent is not its writer (${role ?? 'not open'}); nothing was deleted.`);
    const next = structuredClone(ctx.draft);
    drop(next);
    return async () => {
      try {
        await checkDestroy(so);
        await ctx.host.commit(next);
      } catch (e) {
        err((e as Error).message);
      }
      ctx.out.push(`Deleted storage object ${a.name}.`);
      const n = await destroyVolume(so, path);
      ctx.out.push(`Destroyed volume s3://${so.bucket}/${so.prefix ?? `${so.name}/`}: ${n} objects deleted.`);
    };
  },
};
