// Live migration of an object LUN between agents (docs/migration.md), the agent's half: report and drain
// what is dirty while serving, hand the writer role over (A), take it over (B). The gateway
// (gateway/migrations.ts) sequences these steps and the ALUA states around them.
import { jobs, type Job } from '../jobs.js';
import { relativePortId, relativePortIds } from '../config/ports.js';
import { storageObjectPath } from '../config/schema.js';
import { exportPr, importPr } from '../scsi/pr/transfer.js';
import { findLun } from './lun-export.js';
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

export function dirtyReport(host: SiteHost, target: string, lun: number) {
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

/** The LU's handover capabilities, provided by the object backstore (writer lease hand-over and promotion). */
interface Transferable {
  handOver?(): Promise<{ epoch: number }>;
  promote?(): Promise<{ epoch: number }>;
}

/** A: everything dirty uploaded, the final root written, the lease released; the PR state goes with the answer. */
export async function handOver(host: SiteHost, target: string, lun: number) {
  const { path, lu, place } = objectUnit(host, target, lun);
  const b = lu.backstore as Transferable;
  if (!b.handOver) throw new Error(`${path} cannot hand its writer lease over`);
  const job = jobFor(path, figures(lu.backstore.stats?.()).dirty_bytes);
  job.setPhase('handing over');
  try {
    const r = await b.handOver();
    const pr = exportPr(lu);
    job.finish();
    return { storage_object: path, epoch: r.epoch, pr, tpg: place.tpg.tag, ...figures(lu.backstore.stats?.()) };
  } catch (e) {
    job.fail(e);
    throw e;
  }
}

/** B: the writer role (next epoch), the PR state of A's LU (A's TPG's registrations re-keyed to ours). */
export async function takeOver(host: SiteHost, target: string, lun: number, pr: Record<string, unknown> | undefined, fromTpg: number | undefined) {
  const { path, lu, place } = objectUnit(host, target, lun);
  const b = lu.backstore as Transferable;
  if (!b.promote) throw new Error(`${path} cannot be promoted to writer`);
  const job = jobs.start('migration', path, { phase: 'taking over' });
  try {
    const r = await b.promote();
    if (pr) {
      const toRelativePortId = relativePortId(relativePortIds(host.model()), place.target.wwn, place.tpg.tag);
      await importPr(lu, pr, fromTpg === undefined ? undefined : { fromTpg, toTpg: place.tpg.tag, target: place.target.wwn, toRelativePortId });
    }
    job.finish();
    return { storage_object: path, epoch: r.epoch, ...figures(lu.backstore.stats?.()) };
  } catch (e) {
    job.fail(e);
    throw e;
  }
}
