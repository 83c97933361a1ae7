// Bandwidth schedules (docs/replication.md §Bandwidth limits): the schedule syntax, and limits that really bound
// the rate of the flusher's uploads and of replication, measured against s3rver.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openObjectBackstore, type ObjectBackstoreSpec } from '../../../agent/backstores/object.js';
import type { Backstore } from '../../../agent/backstores/backstore.js';
import { parseSchedule } from '../../../agent/sites/bandwidth.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { waitFor } from '../backstores/object-fixture.js';

const MiB = 1024 * 1024;
let a: S3rverHandle;
let b: S3rverHandle;
let dir: string;
before(async () => {
  a = await startS3rver('bw-a');
  b = await startS3rver('bw-b');
  dir = await mkdtemp(join(tmpdir(), 'outpost-bw-'));
});
after(async () => {
  await a?.dispose();
  await b?.dispose();
  await rm(dir, { recursive: true, force: true });
});

test('schedules: first matching rule in local time wins, no match is unlimited, bad input is named', () => {
  const s = parseSchedule('20MB/s weekdays 08:00-18:00, 5MB/s sat+sun, unlimited');
  const at = (d: string) => s.rateAt(new Date(d)); // local time
  assert.equal(at('2026-12-02T10:00:00'), 20 * MiB); // Wednesday
  assert.equal(at('2026-12-02T18:00:00'), Infinity);
  assert.equal(at('2026-12-05T10:00:00'), 5 * MiB); // Saturday
  const night = parseSchedule('1MB/s mon-fri 22:00-06:00');
  assert.equal(night.rateAt(new Date('2026-12-01T23:30:00')), MiB); // Tuesday night
  assert.equal(night.rateAt(new Date('2026-12-02T05:59:00')), MiB); // … into Wednesday morning
  assert.equal(night.rateAt(new Date('2026-12-02T06:00:00')), Infinity);
  assert.equal(night.rateAt(new Date('2026-12-06T01:00:00')), Infinity); // Saturday night belongs to Saturday
  assert.equal(parseSchedule('512KiB/s').rateAt(new Date()), 512 * 1024);
  assert.throws(() => parseSchedule('20MB weekdays'), /bad rate '20MB'/);
  assert.throws(() => parseSchedule('20MB/s someday'), /'someday' is neither days/);
  assert.throws(() => parseSchedule('20MB/s 08:00-25:00'), /bad time '25:00'/);
  assert.throws(() => parseSchedule(''), /empty schedule/);
  assert.throws(() => parseSchedule('0MB/s'), /must be positive/);
});

function spec(s3: S3rverHandle, name: string, extra: Record<string, unknown> = {}): ObjectBackstoreSpec {
  return {
    plugin: 'object', name, size: 64 * MiB, bucket: s3.bucket, prefix: `vols/${name}`, endpoint: s3.endpoint, force_path_style: true,
    cache_size: 32 * MiB, cache_dir: join(dir, `cache-${name}`), commit_interval_ms: 200, upload_delay_ms: 50, ...extra,
  } as ObjectBackstoreSpec;
}

/** Bytes/s of a counter between its first movement and when `done` holds. */
async function measure(read: () => number, done: () => boolean, timeoutMs: number): Promise<number> {
  let first: [number, number] | null = null;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = read();
    if (first === null && v > 0) first = [Date.now(), v];
    if (done()) break;
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
  const [t0, v0] = first!;
  return (read() - v0) / Math.max(0.001, (Date.now() - t0) / 1000);
}

async function uploadRate(bs: Backstore, bytes: number): Promise<number> {
  await bs.write(0, [randomBytes(bytes)]);
  await bs.flush();
  return measure(() => Number(bs.stats!().bytes_uploaded), () => bs.stats!().dirty_bytes === 0 && !bs.stats!().uploads_in_flight, 60_000);
}

test('upload_bandwidth bounds the flusher\'s PUT rate (and unlimited does not)', { timeout: 120_000 }, async () => {
  const free = await openObjectBackstore(spec(a, 'free'), { stateDir: dir });
  let unlimited: number;
  try {
    unlimited = await uploadRate(free, 16 * MiB);
  } finally {
    await free.close();
  }
  const bs = await openObjectBackstore(spec(a, 'limited', { attributes: { upload_bandwidth: '1MB/s' } }), { stateDir: dir });
  try {
    assert.equal(bs.stats!().upload_bandwidth, '1MB/s (now 1.0MiB/s)');
    const limited = await uploadRate(bs, 16 * MiB);
    console.log(`# uploads: unlimited ${(unlimited / MiB).toFixed(2)} MiB/s, limited to 1 MiB/s: ${(limited / MiB).toFixed(2)} MiB/s`);
    assert.ok(limited <= 1.25 * MiB, `limited rate ${limited} B/s`);
    assert.ok(limited >= 0.5 * MiB, `limited rate ${limited} B/s still moves data`);
    assert.ok(unlimited > 2 * MiB, `the unlimited rate (${unlimited} B/s) is above the limit, so the bound is the limit's doing`);
    // Lifted live (as `set attribute upload_bandwidth=unlimited` does).
    (await bs.reconfigure!({ ...spec(a, 'limited'), attributes: { upload_bandwidth: 'unlimited' } }))();
    assert.equal(bs.stats!().upload_bandwidth, 'unlimited');
  } finally {
    await bs.close();
  }
});

test('replica_bandwidth bounds replication and never the primary\'s uploads', { timeout: 120_000 }, async () => {
  const bs = await openObjectBackstore(spec(a, 'rbw', {
    attributes: { replica_bandwidth: '1MB/s' }, replica: { bucket: b.bucket, prefix: 'dr/rbw', endpoint: b.endpoint, force_path_style: true },
  }), { stateDir: dir });
  try {
    const up = await uploadRate(bs, 12 * MiB);
    const s = () => bs.stats!();
    const rate = await measure(() => Number(s().replica_bytes_sent), () => s().replica_state === 'current' && s().replica_generation === s().manifest_generation, 60_000);
    console.log(`# replication limited to 1 MiB/s: ${(rate / MiB).toFixed(2)} MiB/s; primary uploads meanwhile ${(up / MiB).toFixed(2)} MiB/s`);
    assert.ok(rate <= 1.25 * MiB, `replication rate ${rate} B/s`);
    assert.ok(rate >= 0.4 * MiB, `replication rate ${rate} B/s still moves data`);
    assert.ok(up > 2 * MiB, `the primary's uploads (${up} B/s) are not held to the replica's limit`);
    assert.match(String(s().replica_bandwidth), /^1MB\/s \(now 1\.0MiB\/s\)$/);
  } finally {
    await bs.close();
  }
});
