// Object backstore against s3rver: client-side encryption (no plaintext in the bucket, wrong or missing key is a
// clear error) and format 1 volumes (read as they are, upgraded to format 2 by the first write).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { keys } from '../../../agent/backstores/object/format.js';
import { blockData, fixture, s3rverObjectPath, MiB, type Fixture } from './object-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

test('an encrypted volume: the bucket holds no plaintext, the key reads it back, a wrong or missing key is refused', async () => {
  const keyFile = join(fx.stateDir, 'enc.key');
  const key = randomBytes(32).toString('hex');
  await writeFile(keyFile, `${key}\n`, { mode: 0o600 });
  const spec = fx.spec('enc', { size: 32 * MiB, cache_size: 16 * MiB, encryption_key_file: keyFile });
  const marker = Buffer.from('OUTPOST-PLAINTEXT-MARKER-0123456789');
  const whole = Buffer.alloc(4 * MiB);
  for (let i = 0; i + marker.length <= whole.length; i += marker.length) marker.copy(whole, i);
  const small = Buffer.alloc(4096);
  marker.copy(small, 100);
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  await bs.write(0, [whole]);
  await bs.write(9 * MiB, [small]);
  await bs.close();
  const stored = await fx.s3.listKeys('vols/enc/');
  assert.ok(stored.some((k) => k.includes('/chunks/')) && stored.some((k) => k.includes('/segments/')), stored.join(' '));
  for (const k of stored) {
    const body = await readFile(s3rverObjectPath(fx.s3, k));
    assert.equal(body.indexOf(marker.subarray(0, 16)), -1, `${k} contains plaintext`);
    assert.equal(body.indexOf(Buffer.from(key)), -1, `${k} contains the key`);
  }
  await rm(join(fx.stateDir, 'cache', 'enc'), { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  assert.ok((await bs.read(0, 4 * MiB)).equals(whole));
  assert.ok((await bs.read(9 * MiB, 4096)).equals(small));
  await bs.close();
  // The reopen took the writer lease with the next epoch (docs/writer-lease.md): that is the state refusals must keep.
  const reopened = await fx.s3.listKeys('vols/enc/');

  const { encryption_key_file: _unused, ...noKey } = spec;
  void _unused;
  await assert.rejects(openObjectBackstore(noKey, { stateDir: fx.stateDir }), /is encrypted: its key is needed \(environment OUTPOST_VOLUME_KEY_ENC/);
  const wrong = join(fx.stateDir, 'wrong.key');
  await writeFile(wrong, randomBytes(32).toString('hex'));
  await assert.rejects(openObjectBackstore({ ...spec, encryption_key_file: wrong }, { stateDir: fx.stateDir }), /wrong volume key/);
  await writeFile(wrong, 'not-a-key');
  await assert.rejects(openObjectBackstore({ ...spec, encryption_key_file: wrong }, { stateDir: fx.stateDir }), /must be 64 hex digits/);
  assert.deepEqual(await fx.s3.listKeys('vols/enc/'), reopened, 'refused opens change nothing in the bucket');

  // The key from the environment instead of a file.
  process.env.OUTPOST_VOLUME_KEY_ENC = key;
  try {
    await rm(join(fx.stateDir, 'cache', 'enc'), { recursive: true, force: true });
    bs = await openObjectBackstore(noKey, { stateDir: fx.stateDir });
    assert.ok((await bs.read(9 * MiB, 4096)).equals(small));
    await bs.close();
  } finally {
    delete process.env.OUTPOST_VOLUME_KEY_ENC;
  }
  // A key given for a volume created without one is refused too.
  const plain = fx.spec('plain', { size: 16 * MiB });
  await (await openObjectBackstore(plain, { stateDir: fx.stateDir })).close();
  await assert.rejects(openObjectBackstore({ ...plain, encryption_key_file: keyFile }, { stateDir: fx.stateDir }), /created without encryption/);
});

test('a format 1 volume opens as it is, reads its data, and is upgraded to format 2 by its first write', async () => {
  const prefix = 'vols/v1/';
  const bucket = new Bucket({ bucket: fx.s3.bucket, endpoint: fx.s3.endpoint, forcePathStyle: true });
  const size = 16 * MiB;
  const c0 = Buffer.alloc(4 * MiB, 0x31);
  const c2 = randomBytes(4 * MiB);
  const id0 = 'a'.repeat(32);
  const id2 = 'b'.repeat(32);
  const pid = 'c'.repeat(32);
  try {
    // The layout format 1 code wrote (docs/bucket-format.md §Format 1): bare JSON, 1024-chunk pages, manifests/.
    await bucket.put(keys.descriptor(prefix), Buffer.from(JSON.stringify({ format: 'outpost-volume', version: 1, size, chunk_size: 4 * MiB,
      block_size: 512, page_chunks: 1024, wwn: null, created: '2026-01-01T00:00:00.000Z' })));
    await bucket.put(keys.chunk(prefix, id0), c0);
    await bucket.put(keys.chunk(prefix, id2), c2);
    await bucket.put(keys.page(prefix, pid), Buffer.from(JSON.stringify({ format: 'outpost-page', version: 1, page: 0, chunks: { 0: id0, 2: id2 } })));
    await bucket.put(keys.manifest(prefix, 5), Buffer.from(JSON.stringify({ format: 'outpost-manifest', version: 1, generation: 5,
      created: '2026-01-01T00:00:00.000Z', size, chunk_size: 4 * MiB, page_chunks: 1024, pages: { 0: pid } })));
  } finally {
    bucket.destroy();
  }
  const before = await fx.s3.listKeys(prefix);
  const spec = fx.spec('v1', { size, cache_size: 16 * MiB, prefix });
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  assert.equal(bs.stats!().format_version, 1);
  const all = await bs.read(0, size);
  assert.ok(all.subarray(0, 4 * MiB).equals(c0));
  assert.ok(all.subarray(4 * MiB, 8 * MiB).equals(Buffer.alloc(4 * MiB)));
  assert.ok(all.subarray(8 * MiB, 12 * MiB).equals(c2));
  await bs.close();
  // Opening takes the writer lease (lease.json, epochs/: docs/writer-lease.md); the volume itself is untouched.
  const volumeKeys = (ks: string[]): string[] => ks.filter((k) => !k.startsWith(`${prefix}epochs/`) && k !== `${prefix}lease.json`);
  assert.deepEqual(volumeKeys(await fx.s3.listKeys(prefix)), before, 'reading a format 1 volume changes nothing');

  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  await bs.write(8192, [blockData(1, 1)]);
  await bs.close();
  assert.equal(bs.stats!().format_version, 2);
  const desc = JSON.parse((await readFile(s3rverObjectPath(fx.s3, `${prefix}volume.json`))).toString().split('\n')[0]!);
  assert.equal(desc.version, 2);
  assert.equal((await fx.s3.listKeys(`${prefix}roots/`)).length, 1);
  assert.ok((await fx.s3.listKeys(`${prefix}chunks/`)).length === 2, 'the format 1 chunk objects are kept and referenced');

  await rm(join(fx.stateDir, 'cache', 'v1'), { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  const want = Buffer.concat([c0, Buffer.alloc(4 * MiB), c2, Buffer.alloc(4 * MiB)]);
  blockData(1, 1).copy(want, 8192);
  assert.ok((await bs.read(0, size)).equals(want), 'after the upgrade the bucket alone serves old and new data');
  await bs.close();
});
