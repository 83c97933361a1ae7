// Object backstore durability against s3rver: an acknowledged flush survives SIGKILL while the bucket is
// down and is uploaded after restart; a bucket outage during writes that fit the cache loses nothing; a read
// that needs the unreachable bucket fails NOT_READY within its bound.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import { BackstoreError } from '../../../agent/backstores/backstore.js';
import { fixture, waitFor, MiB, type Fixture } from './object-fixture.js';

/** Outage length for the outage test; the figure is 30 s (OUTPOST_TEST_OUTAGE_MS=30000). */
const OUTAGE_MS = Number(process.env.OUTPOST_TEST_OUTAGE_MS ?? 5000);

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

test('a flush acknowledged before SIGKILL survives, and the dirty chunks are uploaded after restart', async () => {
  const cacheDir = join(fx.stateDir, 'crash-cache');
  const spec = fx.spec('crash', { size: 64 * MiB, cache_size: 32 * MiB, cache_dir: cacheDir, read_timeout_ms: 2000, retry_max_ms: 300 });
  const data = randomBytes(20 * MiB + 1536);
  const dataFile = join(fx.stateDir, 'crash.bin');
  await writeFile(dataFile, data);
  const offset = 3 * MiB + 512;
  const child = spawn(process.execPath, [fileURLToPath(new URL('./object-crash.child.js', import.meta.url))], {
    env: { ...process.env, ...fx.s3.env, SPEC: JSON.stringify(spec), STATE_DIR: fx.stateDir, DATA_FILE: dataFile, OFFSET: String(offset) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  try {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor(() => out.includes('opened'), 20_000, 'child to open the volume');
    await fx.s3.stop(); // nothing can reach the bucket: the flushed data exists only in the local cache
    child.stdin!.write('go\n');
    await waitFor(() => out.includes('flushed'), 30_000, 'child flush');
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
  }
  assert.equal(child.signalCode, 'SIGKILL');
  await fx.s3.start();
  assert.equal((await fx.s3.listKeys('vols/crash/chunks/')).length + (await fx.s3.listKeys('vols/crash/segments/')).length, 0, 'nothing reached the bucket before the kill');

  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  assert.ok((await bs.read(offset, data.length)).equals(data), 'flushed data lost after SIGKILL');
  await bs.close();
  // Format 2: the four whole chunks become chunk objects, the partial first and last chunks a log segment.
  const chunks = await fx.s3.listKeys('vols/crash/chunks/');
  const segments = await fx.s3.listKeys('vols/crash/segments/');
  assert.ok(chunks.length >= 4 && chunks.length + segments.length >= 5, `recovered dirty chunks were uploaded (${chunks.length} chunk objects, ${segments.length} segments)`);

  await rm(cacheDir, { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  assert.ok((await bs.read(offset, data.length)).equals(data), 'the bucket alone does not hold the recovered data');
  await bs.close();
});

test(`a ${OUTAGE_MS} ms bucket outage during writes that fit the cache: no write fails, nothing is lost`, { timeout: 120_000 + OUTAGE_MS * 2 }, async () => {
  const spec = fx.spec('outage', { size: 128 * MiB, cache_size: 48 * MiB, read_timeout_ms: 1500, retry_max_ms: 500 });
  const before = randomBytes(16 * MiB);
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  await bs.write(0, [before]);
  await bs.close();
  await rm(join(fx.stateDir, 'cache', 'outage'), { recursive: true, force: true });

  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const during = randomBytes(32 * MiB);
  await fx.s3.stop();
  const outageStart = Date.now();
  // An uncached chunk that only the bucket holds: NOT_READY within the bound, not a hang.
  const t0 = Date.now();
  await assert.rejects(bs.read(4 * MiB, 4096), (e: unknown) => e instanceof BackstoreError && e.code === 'ENOTREADY');
  const waited = Date.now() - t0;
  assert.ok(waited <= 1500 + 1000, `read failed after ${waited} ms, bound is 1500 ms`);
  // Writes keep landing in the cache: new chunks, plus partial overwrites of chunks only the bucket holds.
  for (let at = 0; at < during.length; at += MiB) await bs.write(64 * MiB + at, [during.subarray(at, at + MiB)]);
  const patch = randomBytes(64 * 1024);
  await bs.write(8 * MiB + 4096, [patch]);
  patch.copy(before, 8 * MiB + 4096);
  await bs.flush();
  const s = bs.stats!();
  assert.ok((s.dirty_bytes as number) > 0, 'data is waiting for the bucket');
  const left = OUTAGE_MS - (Date.now() - outageStart);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  assert.ok(bs.stats!().last_error, 'the outage shows in last_error');
  await fx.s3.start();
  await waitFor(() => bs.stats!().dirty_bytes === 0 && bs.stats!().oldest_dirty_age_ms === 0, 60_000, 'uploads after the outage');
  await bs.close();

  await rm(join(fx.stateDir, 'cache', 'outage'), { recursive: true, force: true });
  // Verification reads from a healthy bucket: the short outage bound would only measure machine load here.
  bs = await openObjectBackstore({ ...spec, read_timeout_ms: 30_000 }, { stateDir: fx.stateDir });
  assert.ok((await bs.read(0, 16 * MiB)).equals(before), 'pre-outage data (with the partial overwrite) differs');
  assert.ok((await bs.read(64 * MiB, during.length)).equals(during), 'data written during the outage was lost');
  await bs.close();
});

test('opening while the bucket is unreachable fails NOT_READY instead of hanging', async () => {
  await fx.s3.stop();
  try {
    const t0 = Date.now();
    await assert.rejects(openObjectBackstore(fx.spec('down', { read_timeout_ms: 1000 }), { stateDir: fx.stateDir }),
      (e: unknown) => e instanceof BackstoreError && e.code === 'ENOTREADY');
    assert.ok(Date.now() - t0 < 10_000);
  } finally {
    await fx.s3.start();
  }
});
