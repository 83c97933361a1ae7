// Live migration of an object LUN between agents (docs/migration.md), the agent's half: report and drain
// what is dirty while serving, hand the writer role over (A), take it over (B). The gateway
// (gateway/migrations.ts) sequences these steps and the ALUA states around them.
import { jobs, type Job } from '../jobs.js';
import { relativePortId, relativePortIds } from '../config/ports.js';
import { iscsiTargets, storageObjectPath, type LunConfig, type StorageObjectConfig } from '../config/schema.js';
import { exportPr, importPr } from '../scsi/pr/transfer.js';
import { ALUA_STATE_NAMES, type AluaStateName } from '../../shared/control-commands.js';
import { findLun, setAluaState } from './lun-export.js';
import { promote } from './promote.js';
import { LunUpload } from './migration-upload.js';
import type { SiteHost } from './site-host.js';

/** How long one `flush` command waits for the background flusher before answering with what is left. */
const FLUSH_WAIT_MS = 10_000;
const POLL_MS = 100;

/** One migration job per LU on this agent (kind 'migration'), reported through agent/jobs.ts. */
const running = new Map<string, Job>();

function objectUnit(host: SiteHost, target: string, lun: number) {
  const place = findLun(structuredClone(host.model()), target, lun)[0]!;
  if (place.so.plugin !== 'object') throw new Error(`LUN ${lun} of ${target} is a ${place.so.plugin} LUN (${storageObjectPath(place.so)}); only object LUNs migrate live`);
  const path = storageObjectPath(place.so);
  const lu = host.unit(path);
  if (!lu) throw new Error(`${path} is not open on this agent`);
  return { path, lu, place };
}

function figures(stats: Record<string, number | string | null> | undefined) {
  const num = (k: string): number => (typeof stats?.[k] === 'number' ? (stats[k] as number) : 0);
  return {
    dirty_bytes: num('dirty_bytes'),
    uploads_in_flight: num('uploads_in_flight'),
    bytes_uploaded: num('bytes_uploaded'),
    put_count: num('put_count'),
    lease_role: (stats?.lease_role as string | undefined) ?? null,
    lease_epoch: num('lease_epoch'),
    last_error: (stats?.last_error as string | null | undefined) ?? null,
  };
}

/** fileio/block LUNs being uploaded into an object volume for a migration (agent/sites/migration-upload.ts). */
const uploads = new Map<string, LunUpload>();

/** A: starts uploading a fileio/block LUN into a new object volume at `volume` (the destination's bucket/prefix). */
export async function startUpload(host: SiteHost, target: string, lun: number, volume: Record<string, unknown>) {
  const key = keyOf(target, lun);
  if (uploads.get(key)?.handedOver === false) throw new Error(`LUN ${lun} of ${target} is already being uploaded for a migration`);
  uploads.get(key)?.release(); // a finished one's write fence
  const up = await LunUpload.start(host, target, lun, volume);
  uploads.set(key, up);
  return { ...up.figures(), volume: up.spec };
}

/** A: stops an upload (the migration failed before the cut-over); the LUN serves on as before. */
export async function abortUpload(target: string, lun: number) {
  const key = keyOf(target, lun);
  const up = uploads.get(key);
  if (!up) return { aborted: false };
  uploads.delete(key);
  await up.abort('migration rolled back');
  return { aborted: true };
}

export function dirtyReport(host: SiteHost, target: string, lun: number) {
  const up = uploads.get(keyOf(target, lun));
  if (up) return up.figures();
  const { path, lu } = objectUnit(host, target, lun);
  return { storage_object: path, ...figures(lu.backstore.stats?.()) };
}

function jobFor(path: string, total: number): Job {
  let job = running.get(path);
  if (!job || job.snapshot().state !== 'running') {
    job = jobs.start('migration', path, { total, unit: 'bytes', phase: 'flushing dirty data' });
    running.set(path, job);
  }
  return job;
}

/**
 * Waits (bounded) while the background flusher uploads what is dirty — only dirty chunks, never the whole
 * volume — and the LUN keeps serving. Answers with what is still dirty; the gateway repeats until small.
 */
export async function flushLun(host: SiteHost, target: string, lun: number) {
  const up = uploads.get(keyOf(target, lun));
  if (up) return up.flush();
  const { path, lu } = objectUnit(host, target, lun);
  const start = figures(lu.backstore.stats?.());
  if (start.lease_role !== 'writer') throw new Error(`${path} is not the writer here (lease role ${start.lease_role ?? 'unknown'}); nothing of it to flush`);
  const job = jobFor(path, start.dirty_bytes);
  const base = start.bytes_uploaded;
  const until = Date.now() + FLUSH_WAIT_MS;
  let now = start;
  while (Date.now() < until) {
    now = figures(lu.backstore.stats?.());
    job.set(Math.min(now.bytes_uploaded - base, job.snapshot().total ?? Infinity));
    if (now.dirty_bytes === 0 && now.uploads_in_flight === 0) break;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  return { storage_object: path, ...now, uploaded_now: now.bytes_uploaded - base };
}

/** What a hand-over took out of this agent's model, kept so a rolled-back migration can put it back. */
interface Parked {
  readonly so: StorageObjectConfig;
  readonly luns: ReadonlyArray<{ readonly target: string; readonly tag: number; readonly lun: LunConfig }>;
}
const parked = new Map<string, Parked>();
const keyOf = (target: string, lun: number) => `${target.toLowerCase()}|${lun}`;

/**
 * Takes the storage object and every TPG LUN exporting it out of the model. Closing an object backstore
 * uploads what is dirty, writes the final root and releases the writer lease (docs/writer-lease.md).
 */
async function detach(host: SiteHost, path: string): Promise<Parked> {
  const next = structuredClone(host.model());
  const so = next.storage_objects.find((x) => storageObjectPath(x) === path);
  if (!so) throw new Error(`${path} is not in this agent's configuration`);
  const luns: Array<{ target: string; tag: number; lun: LunConfig }> = [];
  for (const t of iscsiTargets(next)) {
    for (const tpg of t.tpgs) {
      for (const l of tpg.luns) if (l.storage_object === path) luns.push({ target: t.wwn, tag: tpg.tag, lun: l });
      tpg.luns = tpg.luns.filter((l) => l.storage_object !== path);
    }
  }
  next.storage_objects = next.storage_objects.filter((x) => x !== so);
  await host.commit(next);
  return { so, luns };
}

/** Puts a parked storage object and its TPG LUNs back (reopened: the writer when the lease is free). */
async function attach(host: SiteHost, p: Parked, state?: number): Promise<void> {
  const next = structuredClone(host.model());
  const so = structuredClone(p.so);
  const groups = new Set(p.luns.map((l) => l.lun.alua_tg_pt_gp_name ?? 'default_tg_pt_gp'));
  if (state !== undefined) for (const g of so.alua_tpgs ?? []) if (groups.has(g.name)) g.alua_access_state = state;
  next.storage_objects.push(so);
  for (const l of p.luns) {
    const tpg = iscsiTargets(next).find((t) => t.wwn.toLowerCase() === l.target.toLowerCase())?.tpgs.find((g) => g.tag === l.tag);
    if (!tpg) throw new Error(`TPG ${l.tag} of ${l.target} is gone; cannot export ${storageObjectPath(so)} again`);
    tpg.luns.push(structuredClone(l.lun));
  }
  await host.commit(next);
}

/**
 * A: the last dirty bytes uploaded (refused while any stays dirty: the bucket must be reachable), the PR
 * state taken, then the LUN closed here — final root written, writer lease released. The port was set
 * transitioning before, so no command completes on it meanwhile.
 */
export async function handOver(host: SiteHost, target: string, lun: number) {
  const up = uploads.get(keyOf(target, lun));
  if (up) {
    const lu = host.unit(up.path);
    if (!lu) throw new Error(`${up.path} is not open on this agent`);
    return { tpg: findLun(structuredClone(host.model()), target, lun)[0]!.tpg.tag, ...(await up.handOver(lu)) };
  }
  const { path, lu, place } = objectUnit(host, target, lun);
  const job = jobFor(path, figures(lu.backstore.stats?.()).dirty_bytes);
  job.setPhase('handing over');
  try {
    const drained = await flushLun(host, target, lun);
    if (drained.dirty_bytes > 0 || drained.uploads_in_flight > 0) {
      throw new Error(`${drained.dirty_bytes} bytes are still not in the bucket (${drained.last_error ?? 'uploads slow'}); the writer stays here`);
    }
    const pr = exportPr(lu);
    const before = figures(lu.backstore.stats?.());
    parked.set(keyOf(target, lun), await detach(host, path));
    job.finish();
    return { storage_object: path, pr, tpg: place.tpg.tag, detached: true, ...before };
  } catch (e) {
    job.fail(e);
    throw e;
  }
}

/**
 * A after the cut-over: the handed-over LUN exported again — a reader now, B holding the lease — in `state`
 * (unavailable), so A's path answers NOT READY 02/04/0C with the same LU identity until it is removed.
 */
export async function reexport(host: SiteHost, target: string, lun: number, state: AluaStateName) {
  const key = keyOf(target, lun);
  const p = parked.get(key);
  if (!p) throw new Error(`LUN ${lun} of ${target} was not handed over by this agent`);
  await attach(host, p, ALUA_STATE_NAMES[state]);
  parked.delete(key);
  const { path, lu } = objectUnit(host, target, lun);
  const f = figures(lu.backstore.stats?.());
  if (f.lease_role === 'writer') throw new Error(`${path} reopened as the writer: the destination has not taken the lease`);
  return { storage_object: path, ...f };
}

/**
 * The writer role (next epoch) and active/optimized, with the PR state of A's LU (registrations made through
 * A's TPG re-keyed to ours). On B the standby reader is promoted in place (agent/sites/promote.ts: same LU,
 * reopened at A's final root); on A after a hand-over (a rolled-back migration) what was parked is exported again.
 */
export async function takeOver(host: SiteHost, target: string, lun: number, pr: Record<string, unknown> | undefined, fromTpg: number | undefined) {
  const key = keyOf(target, lun);
  const up = uploads.get(key);
  if (up) {
    // a rolled-back upload: the fileio/block LUN never stopped being the data; the volume copy is dropped
    uploads.delete(key);
    await up.abort('migration rolled back after the cut-over began');
    return { storage_object: up.path, restored: true };
  }
  const back = parked.get(key);
  if (back) {
    await attach(host, back);
    parked.delete(key);
    const { path, lu } = objectUnit(host, target, lun);
    return { storage_object: path, restored: true, ...figures(lu.backstore.stats?.()) };
  }
  const { path, lu, place } = objectUnit(host, target, lun);
  const job = jobs.start('migration', path, { phase: 'taking over' });
  try {
    // graceful: A released the lease with its final root; the reader reopens at that root as the writer
    const r = await promote(lu.backstore, { path });
    // the reservation is in force before the port admits media access
    if (pr) {
      const toRelativePortId = relativePortId(relativePortIds(host.model()), place.target.wwn, place.tpg.tag);
      await importPr(lu, pr, fromTpg === undefined ? undefined : { fromTpg, toTpg: place.tpg.tag, target: place.target.wwn, toRelativePortId });
    }
    await setAluaState(host, target, lun, 'active/optimized');
    const now = { epoch: r.epoch, ...figures(lu.backstore.stats?.()) };
    job.finish();
    return { storage_object: path, ...now };
  } catch (e) {
    job.fail(e);
    throw e;
  }
}
