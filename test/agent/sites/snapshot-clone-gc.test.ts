// Clones against s3rver, in process (docs/bucket-format.md §Snapshot, clone): the clone's GC never deletes the
// origin's objects it stopped referencing; a clone creation cut short before its descriptor (a crash) leaves no
// volume and the next open completes it; a snapshot whose object could not be written leaves none behind.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import type { Backstore } from '../../../agent/backstores/backstore.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { checkCloneSource, materializeClone } from '../../../agent/backstores/object/clone.js';
import { keys } from '../../../agent/backstores/object/format.js';
import { keysOf, readRoot } from '../../../agent/backstores/object/roots.js';
import type { VolumeSnapshots } from '../../../agent/backstores/object/snapshots.js';
import { silentLogger } from '../../../agent/lib/log.js';
import { fixture, waitFor, MiB, type Fixture } from '../backstores/object-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

const snaps = (bs: Backstore): VolumeSnapshots => (bs as unknown as { snapshots: VolumeSnapshots }).snapshots;
const fill = (v: number, n = 4 * MiB): Buffer => Buffer.alloc(n, v);
const opts = { size: 32 * MiB, cache_size: 16 * MiB, commit_interval_ms: 100, upload_delay_ms: 20 };

test('a clone overwriting shared chunks never deletes the origin\'s objects; a cut-short clone creation is completed by the next open', { timeout: 180_000 }, async () => {
  const origin = await openObjectBackstore(fx.spec('orig', opts), { stateDir: fx.stateDir });
  const bucket = new Bucket({ bucket: fx.s3.bucket, endpoint: fx.s3.endpoint, forcePathStyle: true });
  let clone: Backstore | undefined;
  try {
    await origin.write(0, [fill(0x11)]);
    await origin.write(4 * MiB, [fill(0x22)]);
    await snaps(origin).create('s1');
    const shared = keysOf('vols/orig/', await readRoot(bucket, 'vols/orig/', keys.snapshot('vols/orig/', 's1'), 4 * MiB, 10_000))
      .filter((k) => k.includes('/chunks/') || k.includes('/segments/'));
    assert.ok(shared.length >= 2);

    // A crash between the clone's root and its descriptor: the put of volume.json never happens.
    const src = await checkCloneSource(bucket, 'vols/orig/@s1', { prefix: 'vols/cl/', size: 32 * MiB, key: null, keyHint: '', timeoutMs: 10_000, log: silentLogger });
    const realPut = bucket.put.bind(bucket);
    bucket.put = async (key, body, t, type) => {
      if (key === keys.descriptor('vols/cl/')) throw new Error('killed before the descriptor');
      return realPut(key, body, t, type);
    };
    await assert.rejects(materializeClone(bucket, 'vols/cl/', src, { size: 32 * MiB, epoch: 1, timeoutMs: 10_000, log: silentLogger }), /killed/);
    bucket.put = realPut;
    assert.deepEqual(await fx.s3.listKeys('vols/cl/volume.json'), [], 'no volume at the clone prefix yet');

    clone = await openObjectBackstore(fx.spec('cl', { ...opts, source: 'vols/orig/@s1' }), { stateDir: fx.stateDir });
    assert.ok((await clone.read(0, 4 * MiB)).equals(fill(0x11)));
    assert.ok((await clone.read(4 * MiB, 4 * MiB)).equals(fill(0x22)));
    // Rewrite both shared chunks whole, through many generations: the clone collects only its own objects.
    for (let i = 0; i < 5; i++) {
      await clone.write(0, [fill(0x50 + i)]);
      await clone.write(4 * MiB, [fill(0x60 + i)]);
      await clone.flush();
      await waitFor(() => clone!.stats!().dirty_bytes === 0 && clone!.stats!().uploads_in_flight === 0, 60_000, 'the clone to upload');
      await new Promise((r) => setTimeout(r, 250));
    }
    await clone.close();
    clone = await openObjectBackstore(fx.spec('cl', { ...opts, source: 'vols/orig/@s1' }), { stateDir: fx.stateDir });
    await new Promise((r) => setTimeout(r, 1500)); // the open-time sweep of the clone
    assert.ok((await clone.read(0, 4096)).equals(fill(0x54, 4096)));
    const left = new Set(await fx.s3.listKeys('vols/orig/'));
    for (const k of shared) assert.ok(left.has(k), `the clone's GC deleted the origin's ${k}`);
    assert.ok((await origin.read(4 * MiB, 4096)).equals(fill(0x22, 4096)));
  } finally {
    await clone?.close().catch(() => undefined);
    await origin.close().catch(() => undefined);
    bucket.destroy();
  }
});

test('a snapshot whose object cannot be written is not listed, and the volume keeps working', { timeout: 60_000 }, async () => {
  const bs = await openObjectBackstore(fx.spec('snapfail', opts), { stateDir: fx.stateDir });
  try {
    await bs.write(0, [fill(0x33, 65536)]);
    // The snapshot object's PUT goes to a bucket that refuses it: the snapshot fails after its root is durable.
    const ops = snaps(bs) as unknown as { bucket: Bucket };
    const realPut = ops.bucket.put.bind(ops.bucket);
    ops.bucket.put = async (key, body, t, type) => {
      if (key.includes('/snapshots/')) throw new Error('503 Slow Down');
      return realPut(key, body, t, type);
    };
    await assert.rejects(snaps(bs).create('half'), /bucket unreachable: 503 Slow Down/);
    ops.bucket.put = realPut;
    assert.deepEqual(await snaps(bs).list(), []);
    await bs.write(65536, [fill(0x34, 65536)]);
    await snaps(bs).create('whole');
    assert.deepEqual((await snaps(bs).list()).map((s) => s.name), ['whole']);
  } finally {
    await bs.close();
  }
});
