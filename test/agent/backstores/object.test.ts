// Object backstore against s3rver: round trip through a small cache, bounded cache dir, restore from the
// bucket alone, PUT economy, UNMAP + garbage collection, descriptor checks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import { BackstoreError } from '../../../agent/backstores/backstore.js';
import { fixture, watchDiskUsage, MiB, type Fixture } from './object-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

async function writeSequential(bs: { write(o: number, c: readonly Buffer[]): Promise<void> }, data: Buffer, base: number, io: number, depth: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < data.length) {
      const at = next;
      next += io;
      // Two views per write, like a Data-Out sequence split across PDUs.
      const half = io / 2;
      await bs.write(base + at, [data.subarray(at, at + half), data.subarray(at + half, at + io)]);
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
}

async function readAll(bs: { read(o: number, l: number): Promise<Buffer> }, base: number, length: number, io: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < length; at += io) parts.push(await bs.read(base + at, Math.min(io, length - at)));
  return Buffer.concat(parts);
}

test('64 MiB through an 8 MiB cache round-trips, the cache dir stays bounded, and the bucket alone restores it', async () => {
  const cacheDir = join(fx.stateDir, 'rt-cache');
  const spec = fx.spec('rt', { size: 128 * MiB, cache_size: 8 * MiB, cache_dir: cacheDir });
  const data = randomBytes(64 * MiB);
  const base = 8 * MiB + 4096; // not chunk aligned: exercises partial chunks at both ends
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const du = watchDiskUsage(cacheDir);
  await writeSequential(bs, data, base, MiB, 4);
  await bs.flush();
  const back = await readAll(bs, base, data.length, 256 * 1024);
  const maxDu = await du.stop();
  assert.ok(back.equals(data), 'read back differs from what was written');
  const head = await bs.read(0, 8 * MiB + 4096);
  assert.ok(head.equals(Buffer.alloc(head.length)), 'never-written range must read as zeros');
  const s1 = bs.stats!();
  await bs.close();
  console.log(`# rt: max cache dir ${(maxDu / MiB).toFixed(2)} MiB for an 8 MiB bound; stats ${JSON.stringify(s1)}`);
  assert.ok(maxDu <= 8 * MiB + 64 * 1024, `cache dir reached ${maxDu} bytes`);
  await assert.rejects(bs.read(0, 512), (e: unknown) => e instanceof BackstoreError && e.code === 'ECLOSED');

  // Clean stop, cache deleted: everything comes back from the bucket.
  await rm(cacheDir, { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const restored = await readAll(bs, base, data.length, MiB);
  assert.ok(restored.equals(data), 'restore from the bucket alone differs');
  const s2 = bs.stats!();
  assert.ok((s2.get_count as number) >= 16, 'reads must have come from the bucket');
  assert.equal(s2.put_count, 0, 'reading must not upload');
  await bs.close();
});

test('writing N MiB sequentially costs about N/4 PUTs plus manifests', async () => {
  const spec = fx.spec('puts', { size: 512 * MiB, cache_size: 64 * MiB, retain_manifests: 1 });
  const bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const n = 192;
  const chunk = randomBytes(MiB);
  for (let i = 0; i < n; i++) await bs.write(i * MiB, [chunk]);
  await bs.close();
  const puts = bs.stats!().put_count as number;
  console.log(`# PUTs for ${n} MiB written once: ${puts} (${n / 4} chunk objects + descriptor + manifests)`);
  assert.ok(puts >= n / 4, 'every chunk needs one PUT');
  assert.ok(puts <= 150, `too many PUTs: ${puts}`);
  // Format 2: a chunk whose writer stalled on backpressure mid-chunk may go partly into a log segment, so the
  // count of whole-chunk objects is not exact; what a user pays is: uploaded bytes stay ~1.0x what was written.
  const uploaded = bs.stats!().bytes_uploaded as number;
  assert.ok(uploaded <= n * MiB * 1.05, `uploaded ${uploaded} bytes for ${n * MiB}`);
  const chunks = await fx.s3.listKeys('vols/puts/chunks/');
  assert.ok(chunks.length >= (n / 4) * 0.75, `${chunks.length} whole-chunk objects`);
});

test('UNMAP drops chunks and garbage collection deletes their objects; zero chunks are never stored', async () => {
  const spec = fx.spec('gc', { size: 64 * MiB, retain_manifests: 1 });
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const data = randomBytes(32 * MiB);
  await bs.write(0, [data]);
  await bs.write(40 * MiB, [Buffer.alloc(8 * MiB)]); // zeros: no objects
  await bs.close();
  const before = await fx.s3.listKeys('vols/gc/chunks/');
  assert.equal(before.length, 8);

  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  await bs.unmap(4 * MiB, 24 * MiB); // chunks 1..6 dropped
  await bs.unmap(28 * MiB + 512, 1024); // partial: zeroes 1 KiB inside chunk 7 (rewritten)
  const r = await bs.read(0, 32 * MiB);
  assert.ok(r.subarray(0, 4 * MiB).equals(data.subarray(0, 4 * MiB)));
  assert.ok(r.subarray(4 * MiB, 28 * MiB).equals(Buffer.alloc(24 * MiB)));
  assert.ok(r.subarray(28 * MiB + 512, 28 * MiB + 1536).equals(Buffer.alloc(1024)));
  assert.ok(r.subarray(28 * MiB + 1536).equals(data.subarray(28 * MiB + 1536)));
  await bs.close();
  const afterKeys = await fx.s3.listKeys('vols/gc/chunks/');
  console.log(`# gc: chunk objects ${before.length} -> ${afterKeys.length}; roots ${(await fx.s3.listKeys('vols/gc/roots/')).length}`);
  // Format 2: the 1 KiB of zeros inside chunk 7 is a zero extent over its chunk object (no bytes uploaded), so
  // chunk 0 and chunk 7 keep their objects and the six unmapped chunks' objects are deleted.
  assert.equal(afterKeys.length, 2, 'chunk 0 and chunk 7 remain');
  assert.equal(afterKeys.filter((k) => before.includes(k)).length, 2, 'chunks 0 and 7 keep their objects');
  assert.equal((await fx.s3.listKeys('vols/gc/segments/')).length, 0, 'a zero extent needs no segment');
  assert.equal((await fx.s3.listKeys('vols/gc/roots/')).length, 1);

  // After a restart (cold cache) the bucket gives the same answer.
  await rm(join(fx.stateDir, 'cache', 'gc'), { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  assert.ok((await bs.read(0, 32 * MiB)).equals(r));
  await bs.close();
});

test('a descriptor that disagrees with the configuration is a clear error and changes nothing', async () => {
  const spec = fx.spec('desc', { size: 16 * MiB });
  const bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  await bs.write(0, [Buffer.alloc(4096, 7)]);
  await bs.close();
  const keysBefore = await fx.s3.listKeys('vols/desc/');
  await assert.rejects(openObjectBackstore({ ...spec, size: 32 * MiB }, { stateDir: fx.stateDir }), /size 16777216 bytes but the configuration says 33554432/);
  assert.deepEqual(await fx.s3.listKeys('vols/desc/'), keysBefore);
  await assert.rejects(openObjectBackstore({ ...spec, cache_size: MiB }, { stateDir: fx.stateDir }), /cache_size must be at least/);
});
