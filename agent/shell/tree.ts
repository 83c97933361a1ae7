// The targetcli tree over the config model (targetcli-fb ui_root/ui_backstore/ui_target): names, children, summaries.
// Nodes are rebuilt from the model on every command; they carry identifiers, never live objects.
import { bytesToHuman } from '../config/size.js';
import { effectiveAcls } from '../config/managed.js';
import { sameIscsiName } from '../config/names.js';
import {
  PLUGIN_DIR, iscsiFabric, iscsiTargets, parseStorageObjectPath, storageObjectPath,
  type NodeAclConfig, type Plugin, type RootConfig, type StorageObjectConfig, type TargetConfig, type TpgConfig,
} from '../config/schema.js';

export type NodeKind =
  | 'root' | 'backstores' | 'backstore' | 'so' | 'alua' | 'alua_tpg' | 'iscsi' | 'target' | 'tpg'
  | 'acls' | 'acl' | 'mapped_lun' | 'luns' | 'lun' | 'portals' | 'portal' | 'tunnels' | 'tunnel';

/** Extra facts about running objects the summaries show (sizes of block devices, open errors). */
export interface SoInfo {
  size?: number;
  error?: string;
  /** Live figures from the open backstore (Backstore.stats()); present only when an agent runs it. */
  stats?: Record<string, number | string | null>;
}

export interface TreeContext {
  root: RootConfig;
  soInfo(path: string): SoInfo | undefined;
  /** Whether the running agent listens on a portal; absent offline (the file cannot say). */
  portalListening?(ip: string, port: number): boolean;
  /** Live state of a tunnel (running agent only). */
  tunnelInfo?(target: string, tag: number, url: string): string | undefined;
}

export interface TreeNode {
  readonly kind: NodeKind;
  readonly name: string;
  readonly path: string;
  readonly parent?: TreeNode;
  /** Identifiers of the object this node stands for (plugin, so, target, tag, acl, lun, mlun, portal). */
  readonly ids: Readonly<Record<string, string>>;
  children(): TreeNode[];
  summary(): [string, boolean | null];
}

const ALUA_STATES: Record<number, string> = { 0: 'Active/optimized', 1: 'Active/non-optimized', 2: 'Standby', 3: 'Unavailable', 4: 'LBA Dependent', 14: 'Offline', 15: 'Transitioning' };
const BACKSTORE_DIRS = ['block', 'fileio', 'object', 'pscsi', 'ramdisk'] as const;

/** configshell's sorting_keys: trailing numbers compare numerically (lun2 < lun10). */
export function naturalCompare(a: string, b: string): number {
  const ma = /^(.*?)(\d+)$/.exec(a);
  const mb = /^(.*?)(\d+)$/.exec(b);
  const [pa, na] = ma ? [ma[1]!, Number(ma[2])] : [a, 0];
  const [pb, nb] = mb ? [mb[1]!, Number(mb[2])] : [b, 0];
  return pa < pb ? -1 : pa > pb ? 1 : na - nb;
}

// ---- lookups into a (possibly draft) model by identifiers ----

export function findSo(root: RootConfig, plugin: Plugin, name: string): StorageObjectConfig | undefined {
  return root.storage_objects.find((s) => s.plugin === plugin && s.name === name);
}

export function findTarget(root: RootConfig, wwn: string): TargetConfig | undefined {
  return iscsiTargets(root).find((t) => sameIscsiName(t.wwn, wwn));
}

export function findTpg(root: RootConfig, wwn: string, tag: number): TpgConfig | undefined {
  return findTarget(root, wwn)?.tpgs.find((t) => t.tag === tag);
}

export function findAcl(tpg: TpgConfig, initiator: string): NodeAclConfig | undefined {
  return effectiveAcls(tpg).find((a) => sameIscsiName(a.node_wwn, initiator));
}

export function soInUse(root: RootConfig, path: string): boolean {
  return iscsiTargets(root).some((t) => t.tpgs.some((g) => g.luns.some((l) => l.storage_object === path)));
}

function soSummary(ctx: TreeContext, so: StorageObjectConfig): [string, boolean | null] {
  const path = storageObjectPath(so);
  const info = ctx.soInfo(path);
  if (info?.error) return [`${info.error}`, false];
  const status = soInUse(ctx.root, path) ? 'activated' : 'deactivated';
  const size = bytesToHuman(info?.size ?? so.size ?? 0);
  const wb = so.write_back ? 'write-back' : 'write-thru';
  switch (so.plugin) {
    case 'fileio': return [`${so.dev} (${size}) ${wb} ${status}`, true];
    case 'block': return [`${so.dev} (${size}) ${so.readonly ? 'ro ' : ''}${wb} ${status}`, true];
    case 'rd_mcp': return [`${so.nullio ? 'nullio ' : ''}(${size}) ${status}`, true];
    case 'pscsi': return [`${so.dev} ${status}`, true];
    case 'object': return objectSummary(so, size, status, info?.stats);
  }
}

/** `s3://bucket/prefix (size) write-back cached 4.0MiB/32.0MiB dirty 0 bytes activated`; live figures when running. */
function objectSummary(so: StorageObjectConfig, size: string, status: string, stats?: Record<string, number | string | null>): [string, boolean | null] {
  const parts = [`s3://${so.bucket}/${so.prefix ?? ''}`, `(${size})`, so.write_back === false ? 'write-thru' : 'write-back'];
  // A read-only snapshot export reads the origin's prefix, not its own; a clone names where it started.
  if (typeof so.source === 'string') parts.splice(0, so.readonly ? 1 : 0, so.readonly ? `snapshot s3://${so.bucket}/${so.source} read-only` : `clone of ${so.source}`);
  const n = (k: string): number | undefined => (typeof stats?.[k] === 'number' ? stats[k] as number : undefined);
  const cached = n('cached_bytes');
  const cap = n('cache_size');
  const dirty = n('dirty_bytes');
  if (cached !== undefined && cap !== undefined) parts.push(`cached ${bytesToHuman(cached)}/${bytesToHuman(cap)}`);
  if (dirty !== undefined) parts.push(`dirty ${bytesToHuman(dirty)}`);
  if (typeof stats?.replica_state === 'string') parts.push(`replica ${stats.replica_state} ${n('replica_recovery_point_s') ?? '?'}s behind`);
  parts.push(status);
  return [parts.join(' '), true];
}

function tpgSummary(tpg: TpgConfig): [string, boolean | null] {
  if (!tpg.enable) return ['disabled', false];
  const msg: string[] = [];
  let status: boolean | null = null;
  const gen = Number(tpg.attributes.generate_node_acls ?? 0) === 1;
  msg.push(gen ? 'gen-acls' : 'no-gen-acls');
  if (Number(tpg.attributes.authentication ?? 0) !== 1) {
    msg.push('no-auth');
    if (gen) status = true;
  } else if (!gen) {
    msg.push('auth per-acl');
  } else {
    msg.push('tpg-auth');
    status = Boolean(tpg.chap_password && tpg.chap_userid);
    msg.push(tpg.chap_mutual_userid && tpg.chap_mutual_password ? 'mutual auth' : '1-way auth');
  }
  return [msg.join(', '), status];
}

function aclSummary(tpg: TpgConfig, acl: NodeAclConfig): [string, boolean | null] {
  const msg: string[] = [];
  let status: boolean | null = null;
  if (acl.outpost_managed) msg.push('managed by gateway');
  if (Number(tpg.attributes.authentication ?? 0) === 1) {
    if (Number(tpg.attributes.generate_node_acls ?? 0) === 1) msg.push('auth via tpg');
    else {
      status = Boolean(acl.chap_password && acl.chap_userid);
      msg.push(acl.chap_mutual_userid && acl.chap_mutual_password ? 'mutual auth' : '1-way auth');
    }
  }
  msg.push(`Mapped LUNs: ${acl.mapped_luns.length}`);
  return [msg.join(', '), status];
}

function soLabel(path: string): string {
  const p = parseStorageObjectPath(path);
  return p ? `${p.plugin}/${p.name}` : path;
}

export function buildTree(ctx: TreeContext): TreeNode {
  const { root } = ctx;
  const mk = (kind: NodeKind, name: string, parent: TreeNode | undefined, ids: Record<string, string>,
    summary: () => [string, boolean | null], children: (self: TreeNode) => TreeNode[] = () => []): TreeNode => {
    const path = parent === undefined ? '/' : parent.path === '/' ? `/${name}` : `${parent.path}/${name}`;
    const node: TreeNode = {
      kind, name, path, parent, ids,
      children: () => children(node).sort((a, b) => naturalCompare(a.name, b.name)),
      summary,
    };
    return node;
  };

  const soNode = (parent: TreeNode, so: StorageObjectConfig): TreeNode =>
    mk('so', so.name, parent, { ...parent.ids, so: so.name }, () => soSummary(ctx, so), (self) => [
      mk('alua', 'alua', self, self.ids, () => [`ALUA Groups: ${(so.alua_tpgs ?? [{}]).length}`, null], (alua) =>
        (so.alua_tpgs ?? [{ name: 'default_tg_pt_gp', tg_pt_gp_id: 0, alua_access_state: 0 }]).map((g) =>
          mk('alua_tpg', g.name, alua, { ...alua.ids, alua: g.name }, () => [`ALUA state: ${ALUA_STATES[g.alua_access_state ?? 0] ?? String(g.alua_access_state)}`, true]))),
    ]);

  const tpgChildren = (t: TargetConfig, tpg: TpgConfig) => (self: TreeNode): TreeNode[] => {
    const ids = self.ids;
    return [
      mk('acls', 'acls', self, ids, () => [`ACLs: ${effectiveAcls(tpg).length}`, null], (acls) =>
        effectiveAcls(tpg).map((acl) => mk('acl', acl.node_wwn, acls, { ...ids, acl: acl.node_wwn }, () => aclSummary(tpg, acl), (an) =>
          acl.mapped_luns.map((m) => mk('mapped_lun', `mapped_lun${m.index}`, an, { ...an.ids, mlun: String(m.index) }, () => {
            const lun = tpg.luns.find((l) => l.index === m.tpg_lun);
            if (!lun) return ['BROKEN LUN LINK', false];
            return [`lun${lun.index} ${soLabel(lun.storage_object)} (${m.write_protect ? 'ro' : 'rw'})`, true];
          }))))),
      mk('luns', 'luns', self, ids, () => [`LUNs: ${tpg.luns.length}`, null], (luns) =>
        tpg.luns.map((l) => mk('lun', `lun${l.index}`, luns, { ...ids, lun: String(l.index) }, () => {
          const p = parseStorageObjectPath(l.storage_object);
          const so = p && findSo(root, p.plugin, p.name);
          if (!so) return ['BROKEN STORAGE LINK', false];
          let d = `${so.plugin}/${so.name}`;
          if (so.dev && (so.plugin === 'fileio' || so.plugin === 'block' || so.plugin === 'pscsi')) d += ` (${so.dev})`;
          return [`${d} (${l.alua_tg_pt_gp_name ?? 'default_tg_pt_gp'})`, true];
        }))),
      mk('portals', 'portals', self, ids, () => [`Portals: ${tpg.portals.length}`, null], (ps) =>
        tpg.portals.map((p) => mk('portal', `${p.ip_address}:${p.port}`, ps, { ...ids, portal: `${p.ip_address}:${p.port}` },
          () => (ctx.portalListening?.(p.ip_address, p.port) === false ? ['not listening', false] : [p.iser ? 'iser' : p.offload ? 'offload' : '', true])))),
      // A URL holds '/', so tunnels are named by position; the summary names the relay.
      mk('tunnels', 'tunnels', self, ids, () => [`Tunnels: ${(tpg.outpost_tunnels ?? []).length}`, null], (tn) =>
        (tpg.outpost_tunnels ?? []).map((x, i) => mk('tunnel', `tunnel${i}`, tn, { ...ids, tunnel: x.url }, () => {
          const live = ctx.tunnelInfo?.(t.wwn, tpg.tag, x.url);
          const desc = `${x.url} advertise=${x.advertise}${x.source ? ` source=${x.source}` : ''}`;
          return [live ? `${desc}: ${live}` : desc, live === undefined ? null : /^connected/.test(live)];
        }))),
    ];
    void t;
  };

  return mk('root', '/', undefined, {}, () => ['', null], (r) => [
    mk('backstores', 'backstores', r, {}, () => ['', null], (bs) =>
      BACKSTORE_DIRS.map((dir) => {
        const plugin = (Object.keys(PLUGIN_DIR) as Plugin[]).find((p) => PLUGIN_DIR[p] === dir)!;
        const sos = root.storage_objects.filter((s) => s.plugin === plugin);
        return mk('backstore', dir, bs, { plugin }, () => [`Storage Objects: ${sos.length}`, null], (b) => sos.map((so) => soNode(b, so)));
      })),
    mk('iscsi', 'iscsi', r, {}, () => {
      const fm = iscsiFabric(root);
      const msg: string[] = [];
      let status: boolean | null = null;
      if (fm?.discovery_enable_auth) {
        status = Boolean(fm.discovery_password && fm.discovery_userid);
        msg.push(fm.discovery_mutual_userid && fm.discovery_mutual_password ? 'mutual disc auth' : '1-way disc auth');
      }
      msg.push(`Targets: ${iscsiTargets(root).length}`);
      return [msg.join(', '), status];
    }, (is) =>
      iscsiTargets(root).map((t) => mk('target', t.wwn, is, { target: t.wwn }, () => [`TPGs: ${t.tpgs.length}`, null], (tn) =>
        t.tpgs.map((tpg) => mk('tpg', `tpg${tpg.tag}`, tn, { target: t.wwn, tag: String(tpg.tag) }, () => tpgSummary(tpg), tpgChildren(t, tpg)))))),
  ]);
}

/** Resolves `path` (absolute, or relative to `cwd`, with . and ..) to a node; undefined when absent. */
export function resolve(tree: TreeNode, cwd: string, path: string): TreeNode | undefined {
  const abs = path.startsWith('/') ? path : `${cwd}/${path}`;
  const stack: string[] = [];
  for (const seg of abs.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') stack.pop();
    else stack.push(seg);
  }
  let node: TreeNode | undefined = tree;
  for (const seg of stack) {
    node = node.children().find((c) => c.name === seg) ?? node.children().find((c) => c.kind === 'acl' && sameIscsiName(c.name, seg));
    if (!node) return undefined;
  }
  return node;
}
