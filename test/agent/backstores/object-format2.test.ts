// Object backstore, bucket format 2 against s3rver: random 4 KiB writes cost a few times their size (log segments,
// compaction), read back identical through an emptied cache; a flipped byte in the bucket is a medium error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import { BackstoreError, type Backstore } from '../../../agent/backstores/backstore.js';
import { blockData, fixture, s3rverObjectPath, waitFor, MiB, type Fixture } from './object-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

/** Waits until the flusher has nothing dirty and compaction has stopped changing the bucket. */
async function settle(bs: Backstore, timeoutMs = 120_000): Promise<void> {
  let last = '';
  let stableSince = Date.now();
  await waitFor(() => {
    const s = bs.stats!();
    const now = `${s.put_count}/${s.compactions}/${s.manifest_generation}`;
    if (now !== last || s.dirty_bytes !== 0 || s.uploads_in_flight !== 0) { last = now; stableSince = Date.now(); }
    return Date.now() - stableSince >= 2500;
  }, timeoutMs, 'the flusher and compaction to settle');
}

/** Lets the open-time sweep (which reads the retained roots) finish, so GET counts measure the data path. */
async function quiet(bs: Backstore): Promise<void> {
  let last = -1;
  await waitFor(async () => {
    await new Promise((r) => setTimeout(r, 300));
    const n = bs.stats!().get_count as number;
    const same = n === last;
    last = n;
    return same;
  }, 20_000, 'the sweep to finish');
}

test('random 4 KiB writes: 256 MiB through a 64 MiB cache cost <= 3x in uploads and <= 2000 PUTs per GiB whatever the write rate; reads back identical from the bucket', { timeout: 600_000 }, async () => {
  const size = 512 * MiB;
  const cacheDir = join(fx.stateDir, 'rand-cache');
  const spec = fx.spec('rand', { size, cache_size: 64 * MiB, cache_dir: cacheDir });
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const blocks = size / 4096;
  const version = new Map<number, number>();
  const writes = (256 * MiB) / 4096;
  let rng = 12345;
  const rand = (): number => { rng = (Math.imul(rng, 1103515245) + 12345) >>> 0; return rng >>> 8; };
  const queue = Array.from({ length: writes }, () => rand() % blocks);
  let next = 0;
  const t0 = Date.now();
  // Two writes in flight to one block have no defined order (SBC-4 leaves it to the initiator): never issue one.
  const busy = new Set<number>();
  await Promise.all(Array.from({ length: 32 }, async () => {
    while (next < queue.length) {
      let b = queue[next++]!;
      while (busy.has(b)) b = (b + 1) % blocks;
      busy.add(b);
      const v = (version.get(b) ?? 0) + 1;
      version.set(b, v);
      await bs.write(b * 4096, [blockData(b, v)]);
      busy.delete(b);
    }
  }));
  await bs.flush();
  const writeMs = Date.now() - t0;
  await settle(bs);
  const s = bs.stats!();
  await bs.close();
  const written = writes * 4096;
  const amp = (s.bytes_uploaded as number) / written;
  const putsPerGiB = (s.put_count as number) / (written / (1024 * MiB));
  console.log(`# random 4 KiB: ${writes} writes in ${writeMs} ms (${Math.round(writes / (writeMs / 1000))} IOPS); uploaded/written ${amp.toFixed(3)}; `
    + `PUTs ${s.put_count} (${Math.round(putsPerGiB)} per GiB); GETs ${s.get_count}; segments ${s.segments_uploaded}; compactions ${s.compactions} `
    + `(${s.compacted_bytes} bytes); stored segments ${s.segments_stored}`);
  assert.ok(amp <= 3, `uploaded ${s.bytes_uploaded} bytes for ${written} written (${amp.toFixed(2)}x)`);
  // The target. Segments are cut at 4 MiB, or once their oldest write is segment_age_ms old (5 s by
  // default), never because the previous upload ended: 256 MiB at anything above ~60 IOPS fills 4 MiB segments,
  // and manifests follow segments, so a loaded box gives the same figure as a quiet one (~390,000 unpacked).
  assert.ok(putsPerGiB <= 2000, `${putsPerGiB} PUTs per GiB`);
  // Segments average at least 1 MiB of data (the packing itself, independent of manifests and compaction).
  assert.ok((s.segments_uploaded as number) <= 256, `${s.segments_uploaded} segments for 256 MiB`);
  assert.equal(s.checksum_errors, 0);

  // Emptied cache: everything comes from the bucket, block by block as last written.
  await rm(cacheDir, { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  let bad = 0;
  const zero = Buffer.alloc(4096);
  for (let at = 0; at < size; at += 4 * MiB) {
    const buf = await bs.read(at, 4 * MiB);
    for (let o = 0; o < buf.length; o += 4096) {
      const b = (at + o) / 4096;
      const v = version.get(b);
      if (!buf.subarray(o, o + 4096).equals(v ? blockData(b, v) : zero)) bad++;
    }
  }
  const r = bs.stats!();
  await bs.close();
  console.log(`# read back 512 MiB through an empty cache: ${r.get_count} GETs, ${r.bytes_downloaded} bytes downloaded`);
  assert.equal(bad, 0, `${bad} blocks differ after reading back from the bucket`);
  assert.equal(r.put_count, 0, 'reading must not upload');
});

test('a partial write to an uncached chunk is acknowledged without a download, and only its bytes are uploaded', async () => {
  const spec = fx.spec('partial', { size: 64 * MiB, cache_size: 16 * MiB });
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  await bs.write(0, [Buffer.alloc(8 * MiB, 0x11)]);
  await bs.close();
  await rm(join(fx.stateDir, 'cache', 'partial'), { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  await quiet(bs);
  const g0 = bs.stats!().get_count as number;
  const u0 = bs.stats!().bytes_uploaded as number;
  await bs.write(4096, [blockData(1, 1)]);
  await bs.write(4 * MiB + 8192, [blockData(2, 1)]);
  await bs.flush();
  assert.equal(bs.stats!().get_count, g0, 'the writes did not read the chunks first');
  await bs.close();
  const s = bs.stats!();
  assert.ok((s.bytes_uploaded as number) - u0 < 64 * 1024, `uploaded ${(s.bytes_uploaded as number) - u0} bytes for 8 KiB written`);
  await rm(join(fx.stateDir, 'cache', 'partial'), { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const back = await bs.read(0, 8 * MiB);
  const want = Buffer.alloc(8 * MiB, 0x11);
  blockData(1, 1).copy(want, 4096);
  blockData(2, 1).copy(want, 4 * MiB + 8192);
  assert.ok(back.equals(want));
  // A 4 KiB read of an uncached range costs one GET per object it touches (here: chunk object + segment).
  await bs.close();
  await rm(join(fx.stateDir, 'cache', 'partial'), { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  await quiet(bs);
  const g1 = bs.stats!().get_count as number;
  const d1 = bs.stats!().bytes_downloaded as number;
  const one = await bs.read(0, 12 * 1024);
  assert.ok(one.equals(want.subarray(0, 12 * 1024)));
  assert.equal((bs.stats!().get_count as number) - g1, 2, 'one GET for the chunk object, one for the segment');
  assert.ok((bs.stats!().bytes_downloaded as number) - d1 <= 2 * 64 * 1024 + 4096, 'ranged GETs of the records needed');
  await bs.close();
});

test('a flipped byte in a stored object is a medium error (counted), never data; the rest of the volume still reads', async () => {
  const spec = fx.spec('flip', { size: 32 * MiB, cache_size: 16 * MiB });
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  await bs.write(0, [Buffer.alloc(4 * MiB, 0x5a)]);
  await bs.write(8 * MiB + 4096, [blockData(7, 1)]);
  await bs.close();
  const [chunkKey] = await fx.s3.listKeys('vols/flip/chunks/');
  const [segKey] = await fx.s3.listKeys('vols/flip/segments/');
  for (const key of [chunkKey!, segKey!]) {
    const p = s3rverObjectPath(fx.s3, key);
    const buf = await readFile(p);
    buf[key === chunkKey ? 70_000 : 100]! ^= 0x01;
    await writeFile(p, buf);
  }
  await rm(join(fx.stateDir, 'cache', 'flip'), { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const isMedium = (e: unknown): boolean => e instanceof BackstoreError && e.code === 'EIO' && /checksum mismatch/.test(e.message);
  await assert.rejects(bs.read(65536, 4096), isMedium);
  await assert.rejects(bs.read(8 * MiB + 4096, 4096), isMedium);
  assert.ok((await bs.read(0, 4096)).equals(Buffer.alloc(4096, 0x5a)), 'an intact record of the same object still reads');
  assert.equal(bs.stats!().checksum_errors, 2);
  await bs.close();
});

test('a cache full of zero chunks (never stored, nothing to upload) still makes room: writes of zeros complete', { timeout: 120_000 }, async () => {
  const spec = fx.spec('zeros', { size: 256 * MiB, cache_size: 16 * MiB });
  const bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const zero = Buffer.alloc(4 * MiB);
  const t0 = Date.now();
  for (let i = 0; i < 32; i++) await bs.write(i * 4 * MiB, [zero]); // 8x the cache, whole chunks
  await Promise.all(Array.from({ length: 64 }, (_, i) => bs.write(128 * MiB + i * 4096 * 97, [Buffer.alloc(4096)]))); // scattered, QD64
  const ms = Date.now() - t0;
  await bs.close();
  const s = bs.stats!();
  console.log(`# 128 MiB + 64 x 4 KiB of zeros through a 16 MiB cache: ${ms} ms, ${s.put_count} PUTs`);
  assert.equal(await fx.s3.listKeys('vols/zeros/chunks/').then((k) => k.length), 0, 'zeros are never stored');
  assert.equal(await fx.s3.listKeys('vols/zeros/segments/').then((k) => k.length), 0);
});
