// docs/bucket-format.md §Garbage collection: the open-time sweep runs beside the writer. An object whose PUT has
// landed in the bucket (so the sweep's listing names it) but whose response has not come back yet is not named by
// any root: the sweep must still keep it, or the manifest written next names a deleted object. And neither the
// collector nor the sweep ever deletes an object a root still in the bucket names: a multi-object delete is
// neither atomic nor ordered, so a crash inside one must not leave a root naming a missing object.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { VolumeManifest } from '../../../agent/backstores/object/manifest.js';
import { ObjectStore } from '../../../agent/backstores/object/store.js';
import { keysOf, readRoot } from '../../../agent/backstores/object/roots.js';
import { silentLogger } from '../../../agent/lib/log.js';
import { fixture, MiB, type Fixture } from './object-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

test('an object uploaded while the sweep lists is not deleted by it: the next manifest names an object that exists', { timeout: 60_000 }, async () => {
  const prefix = 'vols/race/';
  const chunkSize = 4 * MiB;
  const bucket = new Bucket({ bucket: fx.s3.bucket, endpoint: fx.s3.endpoint, forcePathStyle: true });
  try {
    const manifest = await VolumeManifest.load({ bucket, prefix, size: 64 * MiB, chunkSize, retain: 2, timeoutMs: 10_000, log: silentLogger });
    const store = new ObjectStore(bucket, prefix, manifest, chunkSize, null, silentLogger);
    // The race made deterministic: the chunk's PUT reaches s3rver, then its response is held until the sweep is done.
    let landed!: () => void;
    const putLanded = new Promise<void>((r) => { landed = r; });
    let release!: () => void;
    const held = new Promise<void>((r) => { release = r; });
    const realPut = bucket.put.bind(bucket);
    bucket.put = async (key, body, timeoutMs, type) => {
      await realPut(key, body, timeoutMs, type);
      if (key.includes('/chunks/')) { landed(); await held; }
    };
    const data = Buffer.alloc(chunkSize, 0x5a);
    const upload = store.uploadChunk(3, data);
    await putLanded;
    const chunkKeys = await fx.s3.listKeys(`${prefix}chunks/`);
    assert.equal(chunkKeys.length, 1, 'the chunk object is in the bucket before the sweep lists');
    await manifest.sweep();
    assert.deepEqual(await fx.s3.listKeys(`${prefix}chunks/`), chunkKeys, 'the sweep kept the object whose PUT was in flight');
    release();
    store.stage(await upload, () => true);
    await store.commit();
    // A fresh reader of the root just written reads the chunk back from the bucket.
    const reader = await VolumeManifest.load({ bucket, prefix, size: 64 * MiB, chunkSize, retain: 2, timeoutMs: 10_000, log: silentLogger });
    const readStore = new ObjectStore(bucket, prefix, reader, chunkSize, null, silentLogger);
    assert.ok((await readStore.read(3, 0, chunkSize, 10_000)).equals(data));
  } finally {
    bucket.destroy();
  }
});

test('garbage goes roots first: no delete request takes an object that a root still in the bucket names', { timeout: 60_000 }, async () => {
  const prefix = 'vols/order/';
  const chunkSize = 4 * MiB;
  const bucket = new Bucket({ bucket: fx.s3.bucket, endpoint: fx.s3.endpoint, forcePathStyle: true });
  try {
    const realDelete = bucket.delete.bind(bucket);
    let requests = 0;
    let objectsDeleted = 0;
    bucket.delete = async (batch, timeoutMs) => {
      const named = new Set<string>();
      for (const k of await fx.s3.listKeys(`${prefix}roots/`)) {
        for (const x of keysOf(prefix, await readRoot(bucket, prefix, k, chunkSize, 10_000))) named.add(x);
      }
      // Roots in this very batch count: the provider may take any of its keys first, and a crash may stop it there.
      for (const k of batch) assert.ok(!named.has(k), `${k} is deleted in the request that deletes, or before, a root naming it`);
      requests++;
      objectsDeleted += batch.filter((k) => !k.includes('/roots/')).length;
      await realDelete(batch, timeoutMs);
    };
    const open = (retain: number) => VolumeManifest.load({ bucket, prefix, size: 64 * MiB, chunkSize, retain, timeoutMs: 10_000, log: silentLogger });
    const writer = await open(3);
    const store = new ObjectStore(bucket, prefix, writer, chunkSize, null, silentLogger);
    // Chunk 3 rewritten at every generation: each old root names an old chunk object that nothing newer names.
    for (let g = 0; g < 6; g++) {
      store.stage(await store.uploadChunk(3, Buffer.alloc(chunkSize, 0x10 + g)), () => true);
      await store.commit();
      await writer.collect();
    }
    const collected = objectsDeleted;
    assert.ok(collected >= 2, `the collector deleted ${collected} replaced objects`);
    // Reopened with a narrower window, the sweep retires the older roots together with what only they named.
    const narrower = await open(1);
    assert.ok(await narrower.sweep() >= 2);
    assert.ok(objectsDeleted > collected, 'the sweep deleted objects of the roots it retired');
    assert.ok(requests >= 2);
    const reader = new ObjectStore(bucket, prefix, await open(1), chunkSize, null, silentLogger);
    assert.ok((await reader.read(3, 0, chunkSize, 10_000)).equals(Buffer.alloc(chunkSize, 0x15)));
  } finally {
    bucket.destroy();
  }
});
