// Object commands of the targetcli tree (targetcli-fb ui_backstore.py, ui_target.py): create/delete per node
// kind, with targetcli's messages. Each runs on a draft copy of the model; the engine commits it.
import { migrateCommand } from './migrate-command.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { validPortalIp } from '../config/load.js';
import { generateTargetIqn, isValidIscsiName, normalizeIscsiName, sameIscsiName } from '../config/names.js';
import { humanToBytes } from '../config/size.js';
import {
  DIR_PLUGIN, defaultAclAttributes, defaultAluaTpg, defaultStorageAttributes, defaultTpgAttributes, defaultTpgParameters,
  iscsiTargets, parseStorageObjectPath, storageObjectPath,
  type NodeAclConfig, type Plugin, type RootConfig, type StorageObjectConfig, type TpgConfig, type TunnelConfig,
} from '../config/schema.js';
import { tunnelProblem } from '../config/tunnels.js';
import type { VolumeDescriptor } from '../backstores/object/format.js';
import { planRestore, type RestorePlan, type VolumeLocation } from '../sites/restore.js';
import { parseIscsiUrl } from '../initiator/url.js';
import { ShellError, type PrefValue, type ShellHost } from './host.js';
import { findAcl, findSo, findTarget, findTpg, resolve, type TreeNode } from './tree.js';
import { parseBool, parseIntParam } from './values.js';
import { replicaCommand } from './replica.js';
import { objectDelete, snapshotCommand } from './volume-commands.js';
import { resolveSource } from '../sites/clone.js';

export interface RunCtx {
  readonly draft: RootConfig;
  readonly node: TreeNode;
  readonly tree: TreeNode;
  readonly host: ShellHost;
  readonly prefs: Record<string, PrefValue>;
  readonly out: string[];
  /** TPGs given the default 0.0.0.0:3260 portal (auto_add_default_portal), and where their lines start in out. */
  readonly defaultPortals?: { tpg: TpgConfig; at: number }[];
  /** What a command's prepare step found out (the bucket's volume.json…) for its run. */
  readonly facts?: Record<string, unknown>;
}

export interface ParamSpec {
  readonly name: string;
  readonly required?: boolean;
  /** Completion values for this parameter. */
  readonly values?: (node: TreeNode) => string[];
}

export interface CommandSpec {
  readonly params: readonly ParamSpec[];
  readonly help: string;
  /**
   * Changes the draft; may return work on the running agent, done after the draft is committed. An action on
   * the running object alone (promote, snapshot, migrate) changes nothing and returns its work: nothing is committed.
   */
  run(ctx: RunCtx, args: Record<string, string | undefined>): void | (() => Promise<void>);
  /** Asynchronous look-ups before run (a bucket's volume), stored in ctx.facts; throws to refuse the command. */
  prepare?(ctx: RunCtx, args: Record<string, string | undefined>): Promise<void>;
}

const err = (msg: string): never => {
  throw new ShellError(msg);
};

export function managedRefusal(initiator: string): string {
  return `The ACL for ${initiator} is managed by the Outpost gateway; change it on the gateway (outpost gateway REST API).`;
}

function tpgOf(ctx: RunCtx): TpgConfig {
  const { target, tag } = ctx.node.ids;
  return findTpg(ctx.draft, target!, Number(tag)) ?? err('TPG no longer exists.');
}

const childNames = (n: TreeNode) => n.children().map((c) => c.name);
const alias = () => randomBytes(5).toString('hex');

// ---------------- backstores ----------------

function addSo(ctx: RunCtx, so: StorageObjectConfig): void {
  if (findSo(ctx.draft, so.plugin, so.name)) err(`Storage object ${so.plugin}/${so.name} already exists.`);
  if (!/^[A-Za-z0-9_\-.:]+$/.test(so.name)) err(`Invalid storage object name '${so.name}': use letters, digits, '_', '-', '.', ':'.`);
  so.wwn ??= randomUUID();
  so.attributes = defaultStorageAttributes(so.plugin);
  if (so.plugin === 'fileio' || so.plugin === 'object') so.attributes.emulate_write_cache = so.write_back ? 1 : 0;
  so.alua_tpgs = [defaultAluaTpg()];
  ctx.draft.storage_objects.push(so);
}

function wwnArg(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}

const fileioCreate: CommandSpec = {
  params: [{ name: 'name', required: true }, { name: 'file_or_dev', required: true }, { name: 'size' }, { name: 'write_back', values: () => ['true', 'false'] }, { name: 'sparse', values: () => ['true', 'false'] }, { name: 'wwn' }],
  help: 'Creates a FileIO storage object backed by a file (created sparse at size if missing).',
  run(ctx, a) {
    const dev = resolvePath(a.file_or_dev!);
    const writeBack = parseBool(a.write_back, true, 'write_back');
    parseBool(a.sparse, true, 'sparse');
    let size: number;
    if (existsSync(dev)) {
      const st = statSync(dev);
      if (st.isBlockDevice()) err(`${dev} is a block device: use /backstores/block.`);
      if (!st.isFile()) err(`Path ${dev} exists but is not a file`);
      if (a.size) ctx.out.push(`${dev} exists, using its size (${st.size} bytes) instead`);
      size = st.size;
      if (size === 0) err(`${dev} is empty; give a size or another file`);
    } else {
      if (!a.size) err('Attempting to create file for new fileio backstore, need a size');
      try {
        size = humanToBytes(a.size!);
      } catch (e) {
        return err((e as Error).message);
      }
      if (size < 512) err(`Size ${a.size} is too small (at least one 512-byte block).`);
      if (!existsSync(dirname(dev))) err(`Could not open ${dev}`);
    }
    for (const so of ctx.draft.storage_objects) if (so.dev === dev) err(`storage object for ${dev} already exists: ${so.name}`);
    addSo(ctx, { plugin: 'fileio', name: a.name!, dev, size, write_back: writeBack, wwn: wwnArg(a.wwn) });
    ctx.out.push(`Created fileio ${a.name} with size ${size}`);
  },
};

const blockCreate: CommandSpec = {
  params: [{ name: 'name', required: true }, { name: 'dev', required: true }, { name: 'readonly', values: () => ['true', 'false'] }, { name: 'wwn' }],
  help: 'Creates a Block storage object on an existing block device (or file).',
  run(ctx, a) {
    const dev = resolvePath(a.dev!);
    if (!existsSync(dev)) err(`Could not open ${dev}`);
    const readonly = parseBool(a.readonly, false, 'readonly');
    for (const so of ctx.draft.storage_objects) if (so.dev === dev) err(`storage object for ${dev} already exists: ${so.name}`);
    addSo(ctx, { plugin: 'block', name: a.name!, dev, readonly, write_back: false, wwn: wwnArg(a.wwn) });
    ctx.out.push(`Created block storage object ${a.name} using ${dev}.`);
  },
};

const ramdiskCreate: CommandSpec = {
  params: [{ name: 'name', required: true }, { name: 'size', required: true }, { name: 'nullio', values: () => ['true', 'false'] }, { name: 'wwn' }],
  help: 'Creates an RDMCP (RAM disk) storage object of the given size (100M, 1G, …).',
  run(ctx, a) {
    let size: number;
    try {
      size = humanToBytes(a.size!);
    } catch (e) {
      return err((e as Error).message);
    }
    if (size < 512) err(`Size ${a.size} is too small (at least one 512-byte block).`);
    const nullio = parseBool(a.nullio, false, 'nullio');
    addSo(ctx, { plugin: 'rd_mcp', name: a.name!, size, nullio, wwn: wwnArg(a.wwn) });
    ctx.out.push(`Created ramdisk ${a.name} with size ${a.size}.`);
  },
};

function objectLocation(a: Record<string, string | undefined>): VolumeLocation {
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(a.bucket!)) err(`'${a.bucket}' is not a valid bucket name.`);
  if (a.endpoint !== undefined && !/^https?:\/\/\S+$/.test(a.endpoint)) err(`endpoint '${a.endpoint}' must be an http(s) URL.`);
  return { bucket: a.bucket!, prefix: a.prefix ?? `${a.name}/`, endpoint: a.endpoint, region: a.region,
    force_path_style: a.force_path_style === undefined ? undefined : parseBool(a.force_path_style, false, 'force_path_style') };
}

const objectCreate: CommandSpec = {
  params: [{ name: 'name', required: true }, { name: 'size', required: true }, { name: 'bucket', required: true }, { name: 'prefix' }, { name: 'endpoint' },
    { name: 'region' }, { name: 'force_path_style', values: () => ['true', 'false'] }, { name: 'cache_dir' }, { name: 'cache_size' }, { name: 'write_back', values: () => ['true', 'false'] }, { name: 'wwn' },
    { name: 'restore', values: () => ['true', 'false'] }, { name: 'prefetch', values: () => ['true', 'false'] },
    { name: 'source' }, { name: 'readonly', values: () => ['true', 'false'] },
    { name: 'import' }, { name: 'import_secret_file' }, { name: 'import_rate' }],
  help: 'Creates an object (S3) storage object: a volume in bucket/prefix behind a bounded local cache. On a prefix that holds a volume '
    + 'it opens that volume with its LU identity (another site restoring it); restore=true refuses a prefix without one. '
    + 'import=iscsi://[user%secret@]host:port/iqn/lun copies another target\'s LUN into it while serving (SIZE = the source\'s capacity).',
  async prepare(ctx, a) {
    // On the running agent the bucket is asked first, so a restore keeps the volume's identity (docs/dr.md).
    // A bucket that cannot be read is left for the open to report, as for any create (unless a restore was asked).
    if (!ctx.host.probeVolume) return;
    try {
      ctx.facts!.volume = await ctx.host.probeVolume(objectLocation(a));
    } catch (e) {
      if (parseBool(a.restore, false, 'restore')) err(`${(e as Error).message}; nothing was created.`);
    }
  },
  run(ctx, a) {
    let size: number;
    let cacheSize: number | undefined;
    try {
      size = humanToBytes(a.size!);
      cacheSize = a.cache_size ? humanToBytes(a.cache_size) : undefined;
    } catch (e) {
      return err((e as Error).message);
    }
    if (size < 512) err(`Size ${a.size} is too small (at least one 512-byte block).`);
    // the backstore cannot open without its cache bound: say so here rather than after "Created …"
    const readonly = parseBool(a.readonly, false, 'readonly');
    if (cacheSize === undefined && !readonly) err('Missing cache_size: the local cache\'s bound is required (for example cache_size=2G).');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(a.bucket!)) err(`'${a.bucket}' is not a valid bucket name.`);
    if (a.endpoint !== undefined && !/^https?:\/\/\S+$/.test(a.endpoint)) err(`endpoint '${a.endpoint}' must be an http(s) URL.`);
    const loc = objectLocation(a);
    const restore = parseBool(a.restore, false, 'restore');
    let plan: RestorePlan | null = null;
    if (ctx.facts && 'volume' in ctx.facts && a.source === undefined) {
      try {
        plan = planRestore(loc, ctx.facts.volume as VolumeDescriptor | null, { size, wwn: wwnArg(a.wwn), restore });
      } catch (e) {
        return err((e as Error).message);
      }
    } else if (restore) err('restore=true needs the running agent, which checks the bucket first (start it, or give its --state-dir).');
    // Lazy hydration serves at once; prefetch warms the chunks the primary's heat map names hottest (docs/dr.md).
    const prefetch = parseBool(a.prefetch, plan !== null, 'prefetch');
    const so: StorageObjectConfig = { plugin: 'object', name: a.name!, size, bucket: a.bucket!, prefix: loc.prefix, wwn: plan?.wwn ?? wwnArg(a.wwn) };
    if (a.endpoint !== undefined) so.endpoint = a.endpoint;
    if (a.region !== undefined) so.region = a.region;
    if (a.force_path_style !== undefined) so.force_path_style = parseBool(a.force_path_style, false, 'force_path_style');
    if (a.cache_dir !== undefined) so.cache_dir = resolvePath(a.cache_dir);
    if (cacheSize !== undefined) so.cache_size = cacheSize;
    so.write_back = parseBool(a.write_back, true, 'write_back');
    if (prefetch) so.prefetch = true;
    // A clone (or with readonly=true, an export) of a snapshot: agent/sites/clone.ts, docs/bucket-format.md.
    if (a.source !== undefined) {
      try { so.source = resolveSource(ctx.draft, so, a.source); } catch (e) { err((e as Error).message); }
    }
    if (readonly) { if (!so.source) err('readonly=true exports a snapshot: give source=VOLUME@SNAPSHOT.'); so.readonly = true; so.write_back = false; }
    if (a.import !== undefined && a.source !== undefined) err('import= and source= exclude each other: a volume starts from a snapshot or from another target, not both.');
    if (a.import !== undefined) {
      try {
        parseIscsiUrl(a.import);
        if (a.import_rate !== undefined) so.import_rate = humanToBytes(a.import_rate);
      } catch (e) {
        return err((e as Error).message);
      }
      so.import = a.import;
      if (a.import_secret_file !== undefined) so.import_secret_file = resolvePath(a.import_secret_file);
    } else if (a.import_secret_file !== undefined || a.import_rate !== undefined) err('import_secret_file and import_rate go with import=iscsi://…');
    addSo(ctx, so);
    ctx.out.push(`Created object storage object ${a.name} with size ${size}.`, ...(plan?.said ?? []));
    if (so.source) ctx.out.push(readonly ? `Exporting snapshot ${a.source} read-only.` : `Cloned from snapshot ${a.source} (sharing its objects).`);
  },
};

const objectPromote: CommandSpec = {
  params: [{ name: 'force', values: () => ['true', 'false'] }],
  help: 'Makes this object LUN its volume\'s writer without a restart, once the writer lease is released or expired; '
    + 'force=true takes the next epoch from a live writer, which is fenced (docs/dr.md, docs/writer-lease.md).',
  run(ctx, a) {
    const force = parseBool(a.force, false, 'force');
    if (!ctx.host.soAction) err('promote acts on the running agent: start it (or give its --state-dir) first.');
    return async () => {
      ctx.out.push(...await ctx.host.soAction!(ctx.node.path, 'promote', { force: String(force) }));
    };
  },
};

const pscsiCreate: CommandSpec = {
  params: [{ name: 'name', required: true }, { name: 'dev', required: true }],
  help: 'pscsi passthrough is not available in Outpost (use /backstores/block).',
  run() {
    err('pscsi backstores are not supported by Outpost; use /backstores/block.');
  },
};

export function deleteSoRefs(root: RootConfig, path: string): void {
  for (const t of iscsiTargets(root)) {
    for (const tpg of t.tpgs) {
      const gone = tpg.luns.filter((l) => l.storage_object === path).map((l) => l.index);
      tpg.luns = tpg.luns.filter((l) => l.storage_object !== path);
      for (const acl of tpg.node_acls) if (!acl.outpost_managed) acl.mapped_luns = acl.mapped_luns.filter((m) => !gone.includes(m.tpg_lun));
    }
  }
}

const soDelete: CommandSpec = {
  params: [{ name: 'name', required: true, values: childNames }],
  help: 'Recursively deletes the storage object having the specified name, and the LUNs using it.',
  run(ctx, a) {
    const plugin = ctx.node.ids.plugin as Plugin;
    const so = findSo(ctx.draft, plugin, a.name!) ?? err(`No storage object named ${a.name}.`);
    ctx.draft.storage_objects = ctx.draft.storage_objects.filter((s) => s !== so);
    deleteSoRefs(ctx.draft, storageObjectPath(so));
    ctx.out.push(`Deleted storage object ${a.name}.`);
  },
};

// ---------------- targets and TPGs ----------------

function newTpg(ctx: RunCtx, tag: number): TpgConfig {
  const tpg: TpgConfig = { tag, enable: Boolean(ctx.prefs.auto_enable_tpgt ?? true), attributes: defaultTpgAttributes(), parameters: defaultTpgParameters(), luns: [], node_acls: [], portals: [] };
  ctx.out.push(`Created TPG ${tag}.`);
  if (ctx.prefs.auto_add_default_portal) {
    const taken = iscsiTargets(ctx.draft).some((t) => t.tpgs.some((g) => g.portals.some((p) => p.ip_address === '0.0.0.0' && p.port === 3260)));
    if (taken) ctx.out.push('Default portal not created, TPGs within a target cannot share ip:port.');
    else {
      tpg.portals.push({ ip_address: '0.0.0.0', iser: false, offload: false, port: 3260 });
      ctx.defaultPortals?.push({ tpg, at: ctx.out.length });
      ctx.out.push('Global pref auto_add_default_portal=true', 'Created default portal listening on all IPs (0.0.0.0), port 3260.');
    }
  }
  return tpg;
}

const targetCreate: CommandSpec = {
  params: [{ name: 'wwn' }],
  help: 'Creates a new target (with TPG 1); without a wwn an IQN is generated.',
  run(ctx, a) {
    const wwn = a.wwn ? normalizeIscsiName(a.wwn) : generateTargetIqn();
    if (!isValidIscsiName(wwn)) err(`'${a.wwn}' is not a valid iSCSI name (iqn.yyyy-mm.reversed.domain[:id], eui.<16 hex> or naa.<16|32 hex>).`);
    if (findTarget(ctx.draft, wwn)) err(`Target ${wwn} already exists.`);
    ctx.draft.targets.push({ fabric: 'iscsi', tpgs: [], wwn });
    ctx.out.push(`Created target ${wwn}.`);
    findTarget(ctx.draft, wwn)!.tpgs.push(newTpg(ctx, 1));
  },
};

const targetDelete: CommandSpec = {
  params: [{ name: 'wwn', required: true, values: childNames }],
  help: 'Recursively deletes the target with the specified wwn, and all objects hanging under it.',
  run(ctx, a) {
    const t = findTarget(ctx.draft, a.wwn!) ?? err(`No such Target in configfs: ${a.wwn}`);
    ctx.draft.targets = ctx.draft.targets.filter((x) => x !== t);
    ctx.out.push(`Deleted Target ${a.wwn}.`);
  },
};

const tpgCreate: CommandSpec = {
  params: [{ name: 'tag' }],
  help: 'Creates a new Target Portal Group within the target (next free tag if omitted).',
  run(ctx, a) {
    const t = findTarget(ctx.draft, ctx.node.ids.target!) ?? err('Target no longer exists.');
    let tag: number;
    if (a.tag) tag = parseIntParam(a.tag.replace(/^tpg/, ''), 'Tag argument', 1, 65535);
    else for (tag = 1; t.tpgs.some((g) => g.tag === tag); tag++);
    if (t.tpgs.some((g) => g.tag === tag)) err(`TPG ${tag} already exists.`);
    t.tpgs.push(newTpg(ctx, tag));
  },
};

const tpgDelete: CommandSpec = {
  params: [{ name: 'tag', required: true, values: (n) => childNames(n).map((c) => c.replace(/^tpg/, '')) }],
  help: 'Deletes the Target Portal Group with the given tag from the target.',
  run(ctx, a) {
    const t = findTarget(ctx.draft, ctx.node.ids.target!) ?? err('Target no longer exists.');
    const tag = parseIntParam(a.tag!.replace(/^tpg/, ''), 'Tag argument', 1, 65535);
    if (!t.tpgs.some((g) => g.tag === tag)) err(`No such TPG: ${tag}`);
    t.tpgs = t.tpgs.filter((g) => g.tag !== tag);
    ctx.out.push(`Deleted TPGT ${tag}.`);
  },
};

const tpgEnable = (on: boolean): CommandSpec => ({
  params: [],
  help: on ? 'Enables the TPG.' : 'Disables the TPG.',
  run(ctx) {
    const tpg = tpgOf(ctx);
    if (tpg.enable === on) ctx.out.push(`The TPGT is already ${on ? 'enabled' : 'disabled'}.`);
    else {
      tpg.enable = on;
      ctx.out.push(`The TPGT has been ${on ? 'enabled' : 'disabled'}.`);
    }
  },
});

// ---------------- ACLs and mapped LUNs ----------------

const aclCreate: CommandSpec = {
  params: [{ name: 'wwn', required: true }, { name: 'add_mapped_luns', values: () => ['true', 'false'] }],
  help: 'Creates a Node ACL for the initiator; with add_mapped_luns (default: global auto_add_mapped_luns) every TPG LUN is mapped.',
  run(ctx, a) {
    const tpg = tpgOf(ctx);
    const wwn = normalizeIscsiName(a.wwn!);
    if (!isValidIscsiName(wwn)) err(`'${a.wwn}' is not a valid iSCSI initiator name (iqn., eui. or naa.).`);
    const existing = tpg.node_acls.find((x) => sameIscsiName(x.node_wwn, wwn));
    if (existing?.outpost_managed || tpg.node_acls.some((x) => x.outpost_managed && sameIscsiName(x.node_wwn, wwn))) err(managedRefusal(wwn));
    if (existing) err(`ACL for ${wwn} already exists.`);
    const acl: NodeAclConfig = { attributes: defaultAclAttributes(), mapped_luns: [], node_wwn: wwn };
    tpg.node_acls.push(acl);
    ctx.out.push(`Created Node ACL for ${wwn}`);
    if (parseBool(a.add_mapped_luns, Boolean(ctx.prefs.auto_add_mapped_luns), 'add_mapped_luns')) {
      for (const lun of [...tpg.luns].sort((x, y) => x.index - y.index)) {
        acl.mapped_luns.push({ alias: alias(), index: lun.index, tpg_lun: lun.index, write_protect: false });
        ctx.out.push(`Created Mapped LUN ${lun.index}.`);
      }
    }
  },
};

const aclDelete: CommandSpec = {
  params: [{ name: 'wwn', required: true, values: childNames }],
  help: 'Deletes the Node ACL with the specified wwn.',
  run(ctx, a) {
    const tpg = tpgOf(ctx);
    const acl = findAcl(tpg, a.wwn!) ?? err(`No such NodeACL in configfs: ${a.wwn}`);
    if (acl.outpost_managed) err(managedRefusal(acl.node_wwn));
    tpg.node_acls = tpg.node_acls.filter((x) => x !== acl);
    ctx.out.push(`Deleted Node ACL ${a.wwn}.`);
  },
};

function localAcl(ctx: RunCtx): NodeAclConfig {
  const acl = findAcl(tpgOf(ctx), ctx.node.ids.acl!) ?? err('ACL no longer exists.');
  if (acl.outpost_managed) err(managedRefusal(acl.node_wwn));
  return acl;
}

function soPathArg(ctx: RunCtx, arg: string): string | undefined {
  const node = arg.startsWith('/') ? resolve(ctx.tree, '/', arg) : undefined;
  if (node?.kind === 'so') return storageObjectPath({ plugin: node.ids.plugin as Plugin, name: node.ids.so! });
  const p = parseStorageObjectPath(arg);
  return p && findSo(ctx.draft, p.plugin, p.name) ? storageObjectPath(p) : undefined;
}

function addLun(ctx: RunCtx, tpg: TpgConfig, path: string, index?: number): number {
  if (tpg.luns.some((l) => l.storage_object === path)) {
    const p = parseStorageObjectPath(path)!;
    err(`lun for storage object ${p.plugin}/${p.name} already exists`);
  }
  let idx = index ?? 0;
  if (index === undefined) while (tpg.luns.some((l) => l.index === idx)) idx++;
  else if (tpg.luns.some((l) => l.index === idx)) err(`LUN ${idx} already exists.`);
  tpg.luns.push({ alias: alias(), alua_tg_pt_gp_name: 'default_tg_pt_gp', index: idx, storage_object: path });
  ctx.out.push(`Created LUN ${idx}.`);
  return idx;
}

const mappedLunCreate: CommandSpec = {
  params: [{ name: 'mapped_lun', required: true }, { name: 'tpg_lun_or_backstore', required: true }, { name: 'write_protect', values: () => ['true', 'false'] }],
  help: 'Maps a TPG LUN (or a storage object, creating its TPG LUN) to the initiator as LUN mapped_lun.',
  run(ctx, a) {
    const acl = localAcl(ctx);
    const tpg = tpgOf(ctx);
    const mapped = parseIntParam(a.mapped_lun!.replace(/^mapped_lun/, ''), 'mapped_lun');
    const wp = parseBool(a.write_protect, false, 'write_protect');
    let tpgLun: number;
    const arg = a.tpg_lun_or_backstore!;
    if (/^(lun)?\d+$/.test(arg)) {
      tpgLun = Number(arg.replace(/^lun/, ''));
      if (!tpg.luns.some((l) => l.index === tpgLun)) err(`No such LUN: ${tpgLun}`);
    } else {
      const path = soPathArg(ctx, arg) ?? err('LUN, storage object, or path not valid');
      tpgLun = tpg.luns.find((l) => l.storage_object === path)?.index ?? addLun(ctx, tpg, path);
    }
    if (acl.mapped_luns.some((m) => m.index === mapped)) err(`Mapped LUN ${mapped} already exists in node ACL ${acl.node_wwn}.`);
    if (acl.mapped_luns.some((m) => m.tpg_lun === tpgLun)) ctx.out.push(`Warning: TPG LUN ${tpgLun} already mapped to this NodeACL`);
    acl.mapped_luns.push({ alias: alias(), index: mapped, tpg_lun: tpgLun, write_protect: wp });
    ctx.out.push(`Created Mapped LUN ${mapped}.`);
  },
};

const mappedLunDelete: CommandSpec = {
  params: [{ name: 'mapped_lun', required: true, values: (n) => childNames(n).map((c) => c.replace(/^mapped_lun/, '')) }],
  help: 'Deletes the specified mapped LUN.',
  run(ctx, a) {
    const acl = localAcl(ctx);
    const idx = parseIntParam(a.mapped_lun!.replace(/^mapped_lun/, ''), 'mapped_lun');
    if (!acl.mapped_luns.some((m) => m.index === idx)) err(`No such mapped LUN: ${idx}`);
    acl.mapped_luns = acl.mapped_luns.filter((m) => m.index !== idx);
    ctx.out.push(`Deleted Mapped LUN ${idx}.`);
  },
};

// ---------------- LUNs ----------------

const lunCreate: CommandSpec = {
  params: [{ name: 'storage_object', required: true, values: (n) => soPaths(n) }, { name: 'lun' }, { name: 'add_mapped_luns', values: () => ['true', 'false'] }],
  help: 'Creates a LUN in the TPG on a storage object; with add_mapped_luns it is mapped into every ACL.',
  run(ctx, a) {
    const tpg = tpgOf(ctx);
    const path = soPathArg(ctx, a.storage_object!) ?? err('storage object or path not valid');
    const addMapped = parseBool(a.add_mapped_luns, Boolean(ctx.prefs.auto_add_mapped_luns), 'add_mapped_luns');
    const idx = addLun(ctx, tpg, path, a.lun ? parseIntParam(a.lun.replace(/^lun/i, ''), 'lun') : undefined);
    if (!addMapped) return;
    for (const acl of tpg.node_acls) {
      if (acl.outpost_managed) continue;
      let m = idx;
      if (acl.mapped_luns.some((x) => x.index === m)) for (m = 0; acl.mapped_luns.some((x) => x.index === m); m++);
      acl.mapped_luns.push({ alias: alias(), index: m, tpg_lun: idx, write_protect: false });
      ctx.out.push(`Created LUN ${idx}->${m} mapping in node ACL ${acl.node_wwn}`);
    }
  },
};

function soPaths(n: TreeNode): string[] {
  let root = n;
  while (root.parent) root = root.parent;
  const bs = root.children().find((c) => c.kind === 'backstores');
  return (bs?.children() ?? []).flatMap((b) => b.children().map((s) => s.path));
}

const lunDelete: CommandSpec = {
  params: [{ name: 'lun', required: true, values: (n) => childNames(n).map((c) => c.replace(/^lun/, '')) }],
  help: 'Deletes the LUN from the TPG, and the mapped LUNs that point to it.',
  run(ctx, a) {
    const tpg = tpgOf(ctx);
    const idx = parseIntParam(a.lun!.replace(/^lun/i, ''), 'lun');
    if (!tpg.luns.some((l) => l.index === idx)) err('Invalid LUN');
    tpg.luns = tpg.luns.filter((l) => l.index !== idx);
    for (const acl of tpg.node_acls) if (!acl.outpost_managed) acl.mapped_luns = acl.mapped_luns.filter((m) => m.tpg_lun !== idx);
    ctx.out.push(`Deleted LUN ${idx}.`);
  },
};

// ---------------- portals ----------------

const portalCreate: CommandSpec = {
  params: [{ name: 'ip_address' }, { name: 'ip_port' }],
  help: 'Creates a network portal (default 0.0.0.0, port 3260).',
  run(ctx, a) {
    const tpg = tpgOf(ctx);
    const port = a.ip_port ? parseIntParam(a.ip_port, 'ip_port', 1, 65535) : 3260;
    const ip = (a.ip_address ?? '0.0.0.0').replace(/^\[(.*)\]$/, '$1');
    if (!validPortalIp(ip)) err(`'${a.ip_address}' is not a valid IP address.`);
    if (port === 3260) ctx.out.push('Using default IP port 3260');
    if (ip === '0.0.0.0') ctx.out.push('Binding to INADDR_ANY (0.0.0.0)');
    if (tpg.portals.some((p) => p.ip_address === ip && p.port === port)) err(`Network portal ${ip}:${port} already exists.`);
    tpg.portals.push({ ip_address: ip, iser: false, offload: false, port });
    ctx.out.push(`Created network portal ${ip}:${port}.`);
  },
};

const portalDelete: CommandSpec = {
  params: [{ name: 'ip_address', required: true, values: (n) => childNames(n).map((c) => c.slice(0, c.lastIndexOf(':'))) },
    { name: 'ip_port', required: true, values: (n) => childNames(n).map((c) => c.slice(c.lastIndexOf(':') + 1)) }],
  help: 'Deletes the network portal with the specified IP address and port.',
  run(ctx, a) {
    const tpg = tpgOf(ctx);
    const ip = a.ip_address!.replace(/^\[(.*)\]$/, '$1');
    const port = parseIntParam(a.ip_port!, 'ip_port', 1, 65535);
    if (!tpg.portals.some((p) => p.ip_address === ip && p.port === port)) err(`No such NetworkPortal in configfs: ${ip}:${port}`);
    tpg.portals = tpg.portals.filter((p) => !(p.ip_address === ip && p.port === port));
    ctx.out.push(`Deleted network portal ${ip}:${port}`);
  },
};

// ---------------- tunnels (Outpost: outpost_tunnels, docs/tunnels.md) ----------------

const tunnelCreate: CommandSpec = {
  params: [{ name: 'url', required: true }, { name: 'advertise', required: true }, { name: 'token_file', required: true }, { name: 'source' }, { name: 'ca_file' }],
  help: 'Adds a tunnel: the agent dials the relay at url (wss://, or ws:// on loopback) and initiators reach this TPG at advertise.',
  run(ctx, a) {
    const tpg = tpgOf(ctx);
    const t: TunnelConfig = { url: a.url!, advertise: a.advertise!, token_file: resolvePath(a.token_file!) };
    if (a.source) t.source = a.source;
    if (a.ca_file) t.ca_file = resolvePath(a.ca_file);
    const problem = tunnelProblem(t);
    if (problem) err(`Invalid tunnel: ${problem}.`);
    if (!existsSync(t.token_file)) err(`Could not open token_file ${t.token_file}`);
    if (t.ca_file && !existsSync(t.ca_file)) err(`Could not open ca_file ${t.ca_file}`);
    if ((tpg.outpost_tunnels ?? []).some((x) => x.url === t.url)) err(`Tunnel ${t.url} already exists.`);
    tpg.outpost_tunnels = [...(tpg.outpost_tunnels ?? []), t];
    ctx.out.push(`Created tunnel ${t.url} advertising ${t.advertise}.`);
  },
};

const tunnelDelete: CommandSpec = {
  params: [{ name: 'url', required: true, values: (n) => n.children().map((c) => c.ids.tunnel!) }],
  help: 'Deletes the tunnel to the relay at url (its connections close).',
  run(ctx, a) {
    const tpg = tpgOf(ctx);
    if (!(tpg.outpost_tunnels ?? []).some((x) => x.url === a.url)) err(`No such tunnel: ${a.url}`);
    tpg.outpost_tunnels = tpg.outpost_tunnels!.filter((x) => x.url !== a.url);
    if (tpg.outpost_tunnels.length === 0) delete tpg.outpost_tunnels;
    ctx.out.push(`Deleted tunnel ${a.url}.`);
  },
};

/** Object commands available at a node, by kind (and plugin for backstores). */
export function objectCommands(node: TreeNode): Record<string, CommandSpec> {
  switch (node.kind) {
    case 'backstore': {
      const create = { fileio: fileioCreate, block: blockCreate, rd_mcp: ramdiskCreate, pscsi: pscsiCreate, object: objectCreate }[node.ids.plugin as Plugin];
      return { create, delete: node.ids.plugin === 'object' ? objectDelete : soDelete };
    }
    case 'so': return node.ids.plugin === 'object' ? { promote: objectPromote, snapshot: snapshotCommand, replica: replicaCommand } : {};
    case 'iscsi': return { create: targetCreate, delete: targetDelete };
    case 'target': return { create: tpgCreate, delete: tpgDelete };
    case 'tpg': return { enable: tpgEnable(true), disable: tpgEnable(false) };
    case 'acls': return { create: aclCreate, delete: aclDelete };
    case 'acl': return { create: mappedLunCreate, delete: mappedLunDelete };
    case 'luns': return { create: lunCreate, delete: lunDelete };
    case 'lun': return { migrate: migrateCommand };
    case 'portals': return { create: portalCreate, delete: portalDelete };
    case 'tunnels': return { create: tunnelCreate, delete: tunnelDelete };
    default: return {};
  }
}

export { DIR_PLUGIN };
