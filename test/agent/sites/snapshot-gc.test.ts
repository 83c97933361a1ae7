// Snapshots of an object volume against s3rver (docs/bucket-format.md §Snapshot, clone): a snapshot holds what was
// written before it, GC (incremental and the open-time sweep) keeps what it references, deleting it frees that;
// bad names, duplicates and missing snapshots are refused with nothing changed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import type { Backstore } from '../../../agent/backstores/backstore.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { readRoot, keysOf } from '../../../agent/backstores/object/roots.js';
import { keys } from '../../../agent/backstores/object/format.js';
import type { VolumeSnapshots } from '../../../agent/backstores/object/snapshots.js';
import { fixture, waitFor, MiB, type Fixture } from '../backstores/object-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

const snaps = (bs: Backstore): VolumeSnapshots => (bs as unknown as { snapshots: VolumeSnapshots }).snapshots;
const fill = (v: number, n = 4 * MiB): Buffer => Buffer.alloc(n, v);

async function settled(bs: Backstore): Promise<void> {
  await waitFor(() => bs.stats!().dirty_bytes === 0 && bs.stats!().uploads_in_flight === 0, 60_000, 'uploads to drain');
}

test('a snapshot keeps what was written before it through overwrites, GC and a reopen; deleting it frees that', { timeout: 180_000 }, async () => {
  const prefix = 'vols/gc/';
  const spec = fx.spec('gc', { size: 64 * MiB, cache_size: 16 * MiB, commit_interval_ms: 100, upload_delay_ms: 20 });
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const bucket = new Bucket({ bucket: fx.s3.bucket, endpoint: fx.s3.endpoint, forcePathStyle: true });
  try {
    await bs.write(0, [fill(0x11)]);
    await bs.write(8 * MiB, [fill(0x22, 4096)]);
    // No wait for the flusher: the snapshot is the flush point.
    const s = await snaps(bs).create('before');
    assert.ok(s.generation >= 1);
    const snapRoot = await readRoot(bucket, prefix, keys.snapshot(prefix, 'before'), 4 * MiB, 10_000);
    const held = keysOf(prefix, snapRoot);
    assert.ok(held.some((k) => k.includes('/chunks/')) && held.some((k) => k.includes('/segments/')), held.join(' '));

    await assert.rejects(snaps(bs).create('before'), /Snapshot before already exists/);
    await assert.rejects(snaps(bs).create('bad/name'), /Invalid snapshot name/);
    await assert.rejects(snaps(bs).create('.json'), /Invalid snapshot name/);
    await assert.rejects(snaps(bs).delete('missing'), /No snapshot named missing/);

    // Overwrite everything the snapshot holds, many manifest generations past the retained window.
    for (let i = 0; i < 6; i++) {
      await bs.write(0, [fill(0x30 + i)]);
      await bs.write(8 * MiB, [fill(0x40 + i, 4096)]);
      await bs.flush();
      await settled(bs);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok((bs.stats!().manifest_generation as number) >= s.generation + 4);
    const present = new Set(await fx.s3.listKeys(prefix));
    for (const k of held) assert.ok(present.has(k), `GC deleted ${k}, which snapshot 'before' references`);

    // A restart: the open-time sweep keeps them too.
    await bs.close();
    await rm(join(fx.stateDir, 'cache', 'gc'), { recursive: true, force: true });
    bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
    await waitFor(async () => (bs.stats!().get_count as number) > 0, 10_000, 'open');
    await new Promise((r) => setTimeout(r, 1500));
    const after1 = new Set(await fx.s3.listKeys(prefix));
    for (const k of held) assert.ok(after1.has(k), `the sweep deleted ${k}, which snapshot 'before' references`);
    assert.ok((await bs.read(0, 4096)).equals(fill(0x35, 4096)));

    const list = await snaps(bs).list();
    assert.deepEqual(list.map((x) => [x.name, x.generation, x.size]), [['before', s.generation, 64 * MiB]]);

    const freed = await snaps(bs).delete('before');
    const after2 = new Set(await fx.s3.listKeys(prefix));
    const unique = held.filter((k) => k.includes('/chunks/') || k.includes('/segments/'));
    for (const k of unique) assert.ok(!after2.has(k), `${k} (held only by the deleted snapshot) is still in the bucket`);
    assert.ok(freed >= unique.length + 1, `freed ${freed}`);
    assert.ok(!after2.has(keys.snapshot(prefix, 'before')));
    assert.deepEqual(await snaps(bs).list(), []);
    assert.ok((await bs.read(8 * MiB, 4096)).equals(fill(0x45, 4096)), 'the live volume is intact');
  } finally {
    await bs.close().catch(() => undefined);
    bucket.destroy();
  }
});

test('a reader (another agent holds the writer lease) and a bucket that is down refuse snapshots, changing nothing', { timeout: 120_000 }, async () => {
  const prefix = 'vols/rd/';
  const lease = { lease_ms: 8000, lease_settle_ms: 1000, read_timeout_ms: 2000 };
  const writer = await openObjectBackstore(fx.spec('rd', { size: 16 * MiB, cache_size: 8 * MiB, ...lease }), { stateDir: fx.stateDir });
  const reader = await openObjectBackstore(fx.spec('rd', { size: 16 * MiB, cache_size: 8 * MiB, ...lease, cache_dir: join(fx.stateDir, 'other-agent') }),
    { stateDir: join(fx.stateDir, 'other') });
  try {
    assert.equal(reader.stats!().lease_role, 'reader');
    await writer.write(0, [fill(0x77, 65536)]);
    await assert.rejects(snaps(reader).create('r1'), /Cannot snapshot object volume rd: it is a reader \(the writer lease is held by .+, epoch \d+\); use the writer's agent\./);
    await snaps(writer).create('w1');
    await assert.rejects(snaps(reader).delete('w1'), /it is a reader/);
    const keysBefore = await fx.s3.listKeys(prefix);
    assert.ok(keysBefore.includes(keys.snapshot(prefix, 'w1')) && !keysBefore.includes(keys.snapshot(prefix, 'r1')));

    await fx.s3.stop();
    try {
      await assert.rejects(snaps(writer).create('down'), /bucket unreachable/);
      await assert.rejects(snaps(writer).list(), /bucket unreachable/);
    } finally {
      await fx.s3.start();
    }
    const keysAfter = await fx.s3.listKeys(`${prefix}snapshots/`);
    assert.deepEqual(keysAfter, [keys.snapshot(prefix, 'w1')]);
  } finally {
    await reader.close().catch(() => undefined);
    await writer.close().catch(() => undefined);
  }
});
