// Where a TARGET/LUN lives in this agent's model, and the model edits migration makes to it: describe the
// LU (identity, bucket location, TPG, ALUA group), set its group's ALUA state, add a standby export of the
// same LU through a TPG of our own, and remove an export. Every edit is a new model handed to commit, so a
// bad one changes nothing (DESIGN: the running system is reconciled from the model, never the reverse).
import { ALUA_STATE_NAMES, type AluaStateName } from '../../shared/control-commands.js';
import { sameIscsiName } from '../config/names.js';
import { relativePortId, relativePortIds } from '../config/ports.js';
import { storageWwn } from '../config/reconcile.js';
import {
  defaultAluaTpg, defaultStorageAttributes, defaultTpgAttributes, defaultTpgParameters, iscsiTargets, storageObjectPath,
  type AluaTpgConfig, type LunConfig, type RootConfig, type StorageObjectConfig, type TargetConfig, type TpgConfig,
} from '../config/schema.js';
import { inquiryProduct } from '../scsi/logical-unit.js';
import type { SiteHost } from './site-host.js';

export interface LunPlace {
  readonly target: TargetConfig;
  readonly tpg: TpgConfig;
  readonly lun: LunConfig;
  readonly so: StorageObjectConfig;
  readonly group: AluaTpgConfig;
}

/** Object-backstore keys that locate the volume and tune it; B opens the same volume with them. */
const VOLUME_KEYS = ['size', 'bucket', 'prefix', 'endpoint', 'region', 'force_path_style', 'cache_size', 'write_back', 'read_timeout_ms', 'upload_concurrency',
  'retain_manifests', 'commit_interval_ms', 'retry_max_ms', 'close_timeout_ms', 'upload_delay_ms', 'read_ahead', 'write_timeout_ms', 'lease_ms', 'lease_settle_ms', 'segment_age_ms'] as const;

/** Every TPG LUN of `target` numbered `lun` (a LUN exported through several TPGs of one agent has several). */
export function findLun(root: RootConfig, target: string, lun: number, tpgTag?: number): LunPlace[] {
  const t = iscsiTargets(root).find((x) => sameIscsiName(x.wwn, target));
  if (!t) throw new Error(`this agent does not serve target ${target}`);
  const out: LunPlace[] = [];
  for (const tpg of t.tpgs) {
    if (tpgTag !== undefined && tpg.tag !== tpgTag) continue;
    const l = tpg.luns.find((x) => x.index === lun);
    if (!l) continue;
    const so = root.storage_objects.find((s) => storageObjectPath(s) === l.storage_object);
    if (!so) throw new Error(`LUN ${lun} of ${target} names ${l.storage_object}, which does not exist`);
    so.alua_tpgs ??= [defaultAluaTpg()];
    const name = l.alua_tg_pt_gp_name ?? 'default_tg_pt_gp';
    const group = so.alua_tpgs.find((g) => g.name === name) ?? so.alua_tpgs[0]!;
    out.push({ target: t, tpg, lun: l, so, group });
  }
  if (out.length === 0) throw new Error(`target ${target} has no LUN ${lun}${tpgTag !== undefined ? ` in TPG ${tpgTag}` : ''} on this agent`);
  return out;
}

/** What the gateway needs to open the same LU elsewhere (no secrets: credentials come from each site's environment). */
export function describeLun(host: SiteHost, target: string, lun: number): Record<string, unknown> {
  const root = host.model();
  const places = findLun(structuredClone(root), target, lun);
  const ids = relativePortIds(root);
  const p = places[0]!;
  const volume: Record<string, unknown> = { name: p.so.name, wwn: storageWwn(p.so), attributes: p.so.attributes ?? {},
    product_id: typeof p.so.product_id === 'string' ? p.so.product_id : inquiryProduct(p.so.plugin) };
  for (const k of VOLUME_KEYS) if (p.so[k] !== undefined) volume[k] = p.so[k];
  return {
    plugin: p.so.plugin,
    storage_object: storageObjectPath(p.so),
    volume,
    tpgs: places.map((x) => ({
      tag: x.tpg.tag,
      relative_port_id: relativePortId(ids, x.target.wwn, x.tpg.tag),
      group: x.group.name,
      group_id: x.group.tg_pt_gp_id,
      state: x.group.alua_access_state ?? 0,
      portals: x.tpg.portals.map((q) => `${q.ip_address}:${q.port}`),
    })),
    tpg_attributes: p.tpg.attributes,
    tpg_parameters: p.tpg.parameters,
  };
}

/** Sets the ALUA access state of the group(s) TARGET/LUN uses here; reconcile raises 2A/06 on the LU. */
export async function setAluaState(host: SiteHost, target: string, lun: number, state: AluaStateName, tpgTag?: number): Promise<{ changed: boolean }> {
  const next = structuredClone(host.model());
  const value = ALUA_STATE_NAMES[state];
  let changed = false;
  for (const p of findLun(next, target, lun, tpgTag)) {
    if ((p.group.alua_access_state ?? 0) !== value) changed = true;
    p.group.alua_access_state = value;
    p.group.alua_access_status = 2; // altered by implicit transition (what RTPG reports)
  }
  if (changed) await host.commit(next);
  return { changed };
}

function parsePortal(s: string): { ip_address: string; port: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new Error(`portal ${JSON.stringify(s)} must be IPv4:PORT`);
  return { ip_address: m[1]!, port: Number(m[2]) };
}

export interface StandbyRequest {
  target: string;
  lun: number;
  tpg: number;
  groupId: number;
  volume: Record<string, unknown>;
  tpgAttributes?: Record<string, unknown>;
  tpgParameters?: Record<string, unknown>;
  portal?: string;
}

/** The ALUA group name a migration's standby export uses on the destination. */
export const MIGRATION_GROUP = 'outpost_migration';

/**
 * B's half of step 1: the same volume (opened by reconcile; a reader while A holds the lease), the same
 * target IQN and LUN number, its own TPG (so its own relative port id) in an ALUA group in standby.
 */
export async function openStandby(host: SiteHost, r: StandbyRequest): Promise<{ storage_object: string; relative_port_id: number; portal: string }> {
  const next = structuredClone(host.model());
  const v = r.volume;
  if (typeof v.name !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(v.name)) throw new Error('standby.open: volume.name must be a backstore name');
  if (typeof v.bucket !== 'string' || typeof v.size !== 'number') throw new Error('standby.open: volume needs bucket and size (an object LUN)');
  const so: StorageObjectConfig = { plugin: 'object', name: v.name, attributes: { ...defaultStorageAttributes('object'), ...(v.attributes as object) } };
  for (const k of ['wwn', ...VOLUME_KEYS] as const) if (v[k] !== undefined) (so as Record<string, unknown>)[k] = v[k];
  if (v.product_id !== undefined) {
    // SPC-4 6.6.2: 16 bytes of printable ASCII; the same on B's path as on A's (a fileio LUN says FILEIO)
    if (typeof v.product_id !== 'string' || !/^[\x20-\x7e]{1,16}$/.test(v.product_id)) throw new Error('standby.open: volume.product_id must be 1-16 printable ASCII characters');
    so.product_id = v.product_id;
  }
  so.alua_tpgs = [{ ...defaultAluaTpg(), name: MIGRATION_GROUP, tg_pt_gp_id: r.groupId, alua_access_state: ALUA_STATE_NAMES.standby, alua_access_type: 1, alua_access_status: 2 }];
  const path = storageObjectPath(so);
  if (next.storage_objects.some((s) => storageObjectPath(s) === path)) throw new Error(`${path} already exists on this agent`);
  next.storage_objects.push(so);
  let t = iscsiTargets(next).find((x) => sameIscsiName(x.wwn, r.target));
  if (!t) next.targets.push((t = { wwn: r.target, fabric: 'iscsi', tpgs: [] }));
  if (t.tpgs.some((g) => g.tag === r.tpg)) throw new Error(`target ${r.target} already has a TPG ${r.tpg} on this agent`);
  let portal = r.portal ? parsePortal(r.portal) : undefined;
  if (!portal) {
    // the agent's own portals are the ones its other TPGs listen on; the gateway cannot know this site's addresses
    const any = next.targets.flatMap((x) => x.tpgs).flatMap((g) => g.portals)[0];
    if (!any) throw new Error('this agent has no portal to export the standby path on; give one (to_portal=IP:PORT)');
    portal = { ip_address: any.ip_address, port: any.port };
  }
  const tpg: TpgConfig = {
    tag: r.tpg, enable: true,
    attributes: { ...defaultTpgAttributes(), ...(r.tpgAttributes as TpgConfig['attributes'] | undefined) },
    parameters: { ...defaultTpgParameters(), ...(r.tpgParameters as TpgConfig['parameters'] | undefined) },
    luns: [{ index: r.lun, storage_object: path, alua_tg_pt_gp_name: MIGRATION_GROUP }],
    node_acls: [], portals: [portal],
  };
  t.tpgs.push(tpg);
  await host.commit(next);
  return { storage_object: path, relative_port_id: relativePortId(relativePortIds(host.model()), r.target, r.tpg), portal: `${portal.ip_address}:${portal.port}` };
}

/** Removes TARGET/LUN (of one TPG, or all) and what only it used: the TPG when empty, the target, the backstore. */
export async function unexport(host: SiteHost, target: string, lun: number, tpgTag?: number): Promise<{ removed: string[] }> {
  const next = structuredClone(host.model());
  const places = findLun(next, target, lun, tpgTag);
  const removed: string[] = [];
  for (const p of places) {
    p.tpg.luns = p.tpg.luns.filter((l) => l !== p.lun);
    removed.push(`${target}/tpg${p.tpg.tag}/lun${lun}`);
    if (p.tpg.luns.length === 0) p.target.tpgs = p.target.tpgs.filter((g) => g !== p.tpg);
  }
  next.targets = next.targets.filter((t) => t.fabric !== 'iscsi' || t.tpgs.length > 0);
  const used = new Set(iscsiTargets(next).flatMap((t) => t.tpgs.flatMap((g) => g.luns.map((l) => l.storage_object))));
  for (const p of places) {
    const path = storageObjectPath(p.so);
    if (!used.has(path) && next.storage_objects.includes(p.so)) {
      next.storage_objects = next.storage_objects.filter((s) => s !== p.so);
      removed.push(path);
    }
  }
  await host.commit(next);
  return { removed };
}
