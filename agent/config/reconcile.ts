// Reconcile: model → running objects (backstores + logical units, portals). Two phases so a change that
// cannot be applied (file missing, port taken) changes nothing: prepare opens/binds what is new, then
// commit closes what went away — or rollback undoes the prepared part.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openBackstore, type BackstoreSpec } from '../backstores/index.js';
import type { Backstore } from '../backstores/backstore.js';
import { describeLocation, volumeLocation } from '../backstores/object/location.js';
import { openImportBackstore } from '../sites/import.js';
import type { PortalAddress } from '../iscsi/target-registry.js';
import type { Logger } from '../lib/log.js';
import type { AluaGroupConfig } from '../scsi/port.js';
import { GEOMETRY_ATTRIBUTES, createLogicalUnit, type LogicalUnit } from '../scsi/logical-unit.js';
import { aluaMembers, relativePortIds } from './ports.js';
import { iscsiTargets, storageObjectPath, type RootConfig, type StorageObjectConfig } from './schema.js';

/** What reconcile needs of the iSCSI fabric (agent/iscsi/server.ts IscsiServer). */
export interface PortalHost {
  addPortal(addr: { ip: string; port: number }): Promise<PortalAddress>;
  removePortal(addr: PortalAddress): Promise<void> | void;
}

export interface UnitEntry {
  readonly path: string;
  readonly sig: string;
  readonly plugin: string;
  lu?: LogicalUnit;
  error?: string;
}

interface Plan {
  opened: UnitEntry[];
  replaced: UnitEntry[];
  removed: UnitEntry[];
  bound: Array<{ key: string; addr: PortalAddress }>;
  unbound: Array<{ key: string; addr: PortalAddress }>;
  /** The model being made current (ALUA groups and member ports are applied from it on commit). */
  model: RootConfig;
  /** Live settings checked by the backstore (bandwidth, replica), applied on commit. */
  live: Array<() => void>;
}

function backstoreSpec(so: StorageObjectConfig): BackstoreSpec {
  switch (so.plugin) {
    case 'fileio': return { plugin: 'fileio', name: so.name, dev: so.dev!, size: so.size, writeBack: so.write_back ?? true };
    case 'block': return { plugin: 'block', name: so.name, dev: so.dev!, readonly: so.readonly ?? false, writeBack: so.write_back ?? false };
    case 'rd_mcp': return { plugin: 'rd_mcp', name: so.name, size: so.size!, nullio: Boolean(so.nullio) };
    case 'object': return { ...so, plugin: 'object', name: so.name };
    case 'pscsi': throw new Error('pscsi passthrough is not supported by Outpost');
  }
}

/** rtslib gives every storage object a UUID wwn; a hand-written config may omit it, so derive a stable one. */
export function storageWwn(so: StorageObjectConfig): string {
  if (so.wwn) return so.wwn;
  const h = createHash('sha256').update(storageObjectPath(so)).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export function aluaGroups(so: StorageObjectConfig): AluaGroupConfig[] {
  return (so.alua_tpgs ?? []).map((g) => ({
    name: g.name, id: g.tg_pt_gp_id, accessState: g.alua_access_state ?? 0, accessType: g.alua_access_type ?? 3, preferred: Boolean(g.preferred),
  }));
}

/**
 * What forces a reopen: the backing (dev, size, write_back, readonly, …) and the geometry attributes.
 * ALUA groups and the other attributes are left out: they are applied to the running LU (applyLive),
 * never by closing it — that would drop a ramdisk's data, every unit attention and reservation, and
 * fail commands in flight on the other paths.
 */
function signature(so: StorageObjectConfig): string {
  // The replica is changed on the running backstore (Backstore.reconfigure), like the attributes.
  const { alua_tpgs: _alua, attributes, replica: _replica, ...rest } = so;
  const geometry = GEOMETRY_ATTRIBUTES.map((k) => [k, attributes?.[k] ?? null]);
  return JSON.stringify([rest, geometry, storageWwn(so)]);
}

export function portalKey(ip: string, port: number): string {
  return `${ip.replace(/^\[(.*)\]$/, '$1')}:${port}`;
}

/**
 * Object backstores of `next` whose bucket prefix another one already uses → that other's path. The one
 * already running keeps its volume; among new ones the first in the model does. Two caches flushing to one
 * prefix would overwrite each other's manifests (issue 17).
 */
function samePrefix(next: RootConfig, running: ReadonlyMap<string, UnitEntry>): Map<string, string> {
  const objects = next.storage_objects.filter((so) => so.plugin === 'object');
  const ordered = [...objects.filter((so) => running.get(storageObjectPath(so))?.lu), ...objects.filter((so) => !running.get(storageObjectPath(so))?.lu)];
  const owner = new Map<string, string>();
  const out = new Map<string, string>();
  for (const so of ordered) {
    const loc = volumeLocation(so);
    const first = owner.get(loc);
    if (first === undefined) owner.set(loc, storageObjectPath(so));
    else out.set(storageObjectPath(so), first);
  }
  return out;
}

export class Runtime {
  readonly units = new Map<string, UnitEntry>();
  readonly portals = new Map<string, PortalAddress>();

  constructor(private readonly opts: { stateDir: string; log: Logger; portalHost: () => PortalHost | undefined;
    /** Work above the backstore for a newly opened unit (agent/sites/: heat map, restore prefetch). */
    attach?: (path: string, so: StorageObjectConfig, backstore: Backstore) => void; }) {}

  private async open(so: StorageObjectConfig, startup: boolean): Promise<UnitEntry> {
    const path = storageObjectPath(so);
    const entry: UnitEntry = { path, sig: signature(so), plugin: so.plugin };
    const ctx = { stateDir: this.opts.stateDir, log: this.opts.log, startup };
    // An object LUN importing from another target (issue 13); the serials served here are what it may not import.
    const backstore = so.plugin === 'object' && so.import !== undefined
      ? await openImportBackstore(backstoreSpec(so), { ...ctx, served: [...this.units.values()].flatMap((u) => u.lu ? [u.lu.wwn] : []) })
      : await openBackstore(backstoreSpec(so), ctx);
    try {
      entry.lu = await createLogicalUnit({
        name: path, wwn: storageWwn(so), backstore, attributes: so.attributes ?? {}, aluaGroups: aluaGroups(so),
        ...(typeof so.product_id === 'string' ? { product: so.product_id } : {}),
        stateDir: join(this.opts.stateDir, 'lu', so.plugin, so.name),
      });
    } catch (err) {
      await backstore.close().catch(() => {});
      throw err;
    }
    this.opts.attach?.(path, so, backstore);
    return entry;
  }

  /**
   * Opens new/changed units and binds new portals for `next`. strict: the first failure undoes the
   * prepared part and throws; lenient (startup): failures are recorded on the entry and logged.
   */
  async prepare(next: RootConfig, strict: boolean): Promise<Plan> {
    const plan: Plan = { opened: [], replaced: [], removed: [], bound: [], unbound: [], model: next, live: [] };
    const wanted = new Map(next.storage_objects.map((so) => [storageObjectPath(so), so]));
    const sharing = samePrefix(next, this.units);
    try {
      for (const [path, so] of wanted) {
        const cur = this.units.get(path);
        if (cur && cur.sig === signature(so)) {
          const apply = await cur.lu?.backstore.reconfigure?.(so);
          if (apply) plan.live.push(apply);
          continue;
        }
        try {
          const other = sharing.get(path);
          if (other) throw new Error(`${describeLocation(so)} is already the volume of ${other}; one backstore per bucket prefix`);
          plan.opened.push(await this.open(so, !strict));
        } catch (err) {
          const msg = `Could not open ${path}: ${(err as Error).message}`;
          if (strict) throw new Error(msg);
          this.opts.log.error({ path, err: (err as Error).message }, 'storage object failed to open');
          plan.opened.push({ path, sig: signature(so), plugin: so.plugin, error: msg });
        }
        if (cur) plan.replaced.push(cur);
      }
      for (const [path, cur] of this.units) if (!wanted.has(path)) plan.removed.push(cur);

      const host = this.opts.portalHost();
      const want = new Map<string, { ip: string; port: number }>();
      for (const t of iscsiTargets(next)) for (const tpg of t.tpgs) {
        if (!tpg.enable) continue;
        for (const p of tpg.portals) want.set(portalKey(p.ip_address, p.port), { ip: p.ip_address.replace(/^\[(.*)\]$/, '$1'), port: p.port });
      }
      if (host) {
        for (const [key, addr] of want) {
          if (this.portals.has(key)) continue;
          try {
            plan.bound.push({ key, addr: await host.addPortal(addr) });
          } catch (err) {
            const msg = `Could not listen on portal ${key}: ${(err as Error).message}`;
            if (strict) throw new Error(msg);
            this.opts.log.error({ portal: key, err: (err as Error).message }, 'portal failed');
          }
        }
        for (const [key, addr] of this.portals) if (!want.has(key)) plan.unbound.push({ key, addr });
      }
    } catch (err) {
      await this.rollback(plan);
      throw err;
    }
    return plan;
  }

  async rollback(plan: Plan): Promise<void> {
    const host = this.opts.portalHost();
    for (const b of plan.bound) await Promise.resolve(host?.removePortal(b.addr)).catch(() => {});
    for (const e of plan.opened) await e.lu?.close().catch(() => {});
  }

  /** Makes the prepared state current; closes units and portals that are no longer wanted. */
  async commit(plan: Plan): Promise<void> {
    for (const e of plan.opened) this.units.set(e.path, e);
    for (const e of plan.removed) this.units.delete(e.path);
    for (const b of plan.bound) this.portals.set(b.key, b.addr);
    for (const u of plan.unbound) this.portals.delete(u.key);
    this.applyLive(plan.model, new Set(plan.opened));
    for (const apply of plan.live) apply();
    const host = this.opts.portalHost();
    for (const u of plan.unbound) await Promise.resolve(host?.removePortal(u.addr)).catch((err) => this.opts.log.warn({ err }, 'removePortal failed'));
    for (const e of [...plan.replaced, ...plan.removed]) await e.lu?.close().catch((err) => this.opts.log.warn({ err, path: e.path }, 'closing unit failed'));
    for (const e of plan.removed) await e.lu?.backstore.forget?.().catch((err) => this.opts.log.warn({ err, path: e.path }, 'removing local state of a deleted unit failed'));
  }

  /**
   * What changes in place on every running LU: attributes (limits; mode page / INQUIRY data changes
   * raise MODE PARAMETERS CHANGED 2A/01 / INQUIRY DATA HAS CHANGED 3F/03 to every nexus, SPC-4 §5.14),
   * and ALUA groups, states and member ports (SPC-4 §5.15). Units opened by this plan start current.
   */
  private applyLive(root: RootConfig, fresh: ReadonlySet<UnitEntry>): void {
    const ids = relativePortIds(root);
    for (const so of root.storage_objects) {
      const entry = this.units.get(storageObjectPath(so));
      const lu = entry?.lu;
      if (!lu) continue;
      if (!fresh.has(entry)) {
        try {
          const r = lu.updateAttributes({ ...(so.attributes ?? {}) });
          if (r.modeChanged) lu.ua.establishOthers(undefined, 'MODE_PARAMETERS_CHANGED');
          if (r.inquiryChanged) lu.ua.establishOthers(undefined, 'INQUIRY_DATA_CHANGED');
        } catch (err) {
          // unreachable: geometry changes are in the signature, so such a unit was reopened
          this.opts.log.error({ path: entry.path, err: (err as Error).message }, 'attribute update failed');
        }
      }
      if (lu.alua.reconfigure(aluaGroups(so))) lu.ua.establishOthers(undefined, 'ASYMMETRIC_ACCESS_STATE_CHANGED');
      lu.alua.setPorts(aluaMembers(root, storageObjectPath(so), ids));
    }
  }

  async closeAll(): Promise<void> {
    for (const e of this.units.values()) await e.lu?.close().catch((err) => this.opts.log.warn({ err, path: e.path }, 'closing unit failed'));
    this.units.clear();
  }
}
