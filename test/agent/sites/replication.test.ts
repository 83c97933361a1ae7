// Replication of an object volume to a second s3rver (docs/replication.md), in process: every generation
// reaches the replica as objects, then pages, then the root, from the tee (no GET at the primary); the replica
// alone restores the exact bytes; refused replicas change nothing in either bucket; failback copies back only
// what the old primary's bucket lacks.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openObjectBackstore, type ObjectBackstoreSpec } from '../../../agent/backstores/object.js';
import type { Backstore } from '../../../agent/backstores/backstore.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { referencedKeys } from '../../../agent/backstores/object/roots.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { freePort } from '../../helpers/net.js';
import { waitFor } from '../backstores/object-fixture.js';

const MiB = 1024 * 1024;
let a: S3rverHandle;
let b: S3rverHandle;
let dir: string;

before(async () => {
  a = await startS3rver('site-a');
  b = await startS3rver('site-b');
  dir = await mkdtemp(join(tmpdir(), 'outpost-repl-'));
});
after(async () => {
  await a?.dispose();
  await b?.dispose();
  await rm(dir, { recursive: true, force: true });
});

function spec(s3: S3rverHandle, name: string, prefix: string, extra: Partial<ObjectBackstoreSpec> = {}): ObjectBackstoreSpec {
  return {
    plugin: 'object', name, size: 64 * MiB, wwn: 'repl-test-wwn-1', bucket: s3.bucket, prefix, endpoint: s3.endpoint, force_path_style: true,
    cache_size: 16 * MiB, cache_dir: join(dir, `cache-${name}-${prefix.replace(/\W/g, '_')}`), commit_interval_ms: 200, upload_delay_ms: 50, ...extra,
  };
}

const replicaOf = (s3: S3rverHandle, prefix: string, extra: Record<string, unknown> = {}) => ({ bucket: s3.bucket, prefix, endpoint: s3.endpoint, force_path_style: true, ...extra });
const stats = (bs: Backstore) => bs.stats!();

async function readAll(bs: Backstore, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < length; at += MiB) parts.push(await bs.read(at, Math.min(MiB, length - at)));
  return Buffer.concat(parts);
}

async function caughtUp(bs: Backstore, timeoutMs = 60_000): Promise<void> {
  await waitFor(() => {
    const s = stats(bs);
    return s.replica_state === 'current' && s.replica_generation === s.manifest_generation && s.dirty_bytes === 0;
  }, timeoutMs, 'the replica to hold the newest generation').catch((e: Error) => {
    const s = stats(bs);
    throw new Error(`${e.message}: ${JSON.stringify(Object.fromEntries(Object.entries(s).filter(([k]) => /replica|manifest|dirty/.test(k))))}`);
  });
}

/** Every root at the replica names only objects that are there (a complete image at every step). */
async function assertComplete(s3: S3rverHandle, prefix: string): Promise<void> {
  const bucket = new Bucket({ bucket: s3.bucket, endpoint: s3.endpoint, forcePathStyle: true });
  try {
    const ref = await referencedKeys(bucket, prefix, 4 * MiB, 1000, 10_000);
    const present = new Set(await s3.listKeys(prefix));
    for (const k of ref.live) assert.ok(present.has(k), `replica root names ${k}, which is missing`);
  } finally {
    bucket.destroy();
  }
}

test('each generation reaches the replica from the tee; the replica alone restores the exact bytes', { timeout: 120_000 }, async () => {
  const primary = await openObjectBackstore({ ...spec(a, 'p1', 'vols/p1'), replica: replicaOf(b, 'dr/p1') } as ObjectBackstoreSpec, { stateDir: dir });
  const image = Buffer.alloc(64 * MiB);
  try {
    const big = randomBytes(12 * MiB);
    await primary.write(4 * MiB, [big]);
    big.copy(image, 4 * MiB);
    for (let i = 0; i < 200; i++) {
      const off = (i * 7919 % 16384) * 4096;
      const blk = randomBytes(4096);
      await primary.write(off, [blk]);
      blk.copy(image, off);
    }
    await primary.flush();
    await caughtUp(primary);
    const s = stats(primary);
    console.log(`# replication: generation ${s.replica_generation}, ${s.replica_objects_copied} objects copied, ${s.replica_objects_fetched} fetched from the primary`);
    assert.equal(s.replica_objects_fetched, 0, 'the tee held every body: nothing was downloaded from the primary');
    assert.equal(s.replica_bytes_behind, 0);
    assert.equal(s.replica_last_error, null);
    assert.ok((await b.listKeys('dr/p1/volume.json')).length === 1, 'the replica has its descriptor');
    await assertComplete(b, 'dr/p1/');
  } finally {
    await primary.close();
  }
  // The primary site is gone: the replica bucket alone serves the same bytes.
  const restored = await openObjectBackstore(spec(b, 'r1', 'dr/p1'), { stateDir: dir });
  try {
    assert.ok((await readAll(restored, 64 * MiB)).equals(image), 'the replica restores the exact bytes');
  } finally {
    await restored.close();
  }
});

test('a replica that is refused changes nothing in either bucket and says what is wrong', { timeout: 120_000 }, async () => {
  // Another volume (other size) already lives at site-b/other/.
  const other = await openObjectBackstore(spec(b, 'other', 'other', { size: 32 * MiB, wwn: 'another-wwn' }), { stateDir: dir });
  await other.write(0, [randomBytes(MiB)]);
  await other.close();
  const primary = await openObjectBackstore(spec(a, 'p2', 'vols/p2'), { stateDir: dir });
  try {
    await primary.write(0, [randomBytes(2 * MiB)]);
    await primary.flush();
    await waitFor(() => stats(primary).dirty_bytes === 0 && stats(primary).manifest_generation !== 0, 20_000, 'the primary to upload');
    const badCreds = join(dir, 'bad-creds');
    await writeFile(badCreds, '[default]\naws_access_key_id = NOTAKEY\naws_secret_access_key = wrong\n', { mode: 0o600 });
    const dead = `http://127.0.0.1:${await freePort()}`;
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['wrong credentials', replicaOf(b, 'dr/p2', { credentials_file: badCreds }), /credentials refused/],
      ['unreachable endpoint', { ...replicaOf(b, 'dr/p2'), endpoint: dead }, /endpoint unreachable/],
      ['another volume', replicaOf(b, 'other'), /holds a different volume \(size 33554432 bytes, not 67108864, wwn another-wwn/],
      ['the primary itself', replicaOf(a, 'vols/p2/'), /the primary volume's own prefix/],
      ['inside the primary', replicaOf(a, 'vols/p2/dr'), /contain one another/],
      ['missing credentials file', replicaOf(b, 'dr/p2', { credentials_file: join(dir, 'nope') }), /credentials_file .*nope: ENOENT/],
      ['credentials_env unset', replicaOf(b, 'dr/p2', { credentials_env: 'NOPE_X' }), /NOPE_X_ACCESS_KEY_ID and NOPE_X_SECRET_ACCESS_KEY must both be set/],
      ['wrong credentials from the environment', replicaOf(b, 'dr/p2', { credentials_env: 'REPL_BAD' }), /credentials refused/],
    ];
    process.env.REPL_BAD_ACCESS_KEY_ID = 'NOTAKEY';
    process.env.REPL_BAD_SECRET_ACCESS_KEY = 'wrong';
    const snapshot = async () => JSON.stringify([(await a.listKeys('vols/p2/')).filter((k) => !k.endsWith('lease.json')), await b.listKeys('')]);
    const before = await snapshot();
    const so = { ...spec(a, 'p2', 'vols/p2'), attributes: {} } as Record<string, unknown>;
    for (const [what, replica, re] of cases) {
      await assert.rejects(primary.reconfigure!({ ...so, replica }), (e: Error) => { assert.match(e.message, re, what); return true; });
    }
    assert.equal(await snapshot(), before, 'neither bucket changed');
    assert.equal(stats(primary).replica_state, undefined, 'no replication started');
    // A schedule that does not parse is refused the same way.
    await assert.rejects(primary.reconfigure!({ ...so, attributes: { upload_bandwidth: '20 parsecs' } }), /upload_bandwidth: bad rate '20'/);
  } finally {
    await primary.close();
  }
});

test('failback: the promoted site replicates back only what the old primary lacks, then the old primary takes over again', { timeout: 120_000 }, async () => {
  const image = Buffer.alloc(64 * MiB);
  const put = async (bs: Backstore, off: number, data: Buffer) => { await bs.write(off, [data]); data.copy(image, off); };
  // Site A writes and replicates to site B.
  let siteA = await openObjectBackstore({ ...spec(a, 'fa', 'vols/fb'), replica: replicaOf(b, 'dr/fb') } as ObjectBackstoreSpec, { stateDir: dir });
  await put(siteA, 0, randomBytes(16 * MiB));
  await put(siteA, 32 * MiB, randomBytes(8 * MiB));
  await siteA.flush();
  await caughtUp(siteA);
  await siteA.close();
  const aKeys = new Set(await a.listKeys('vols/fb/'));

  // Failover: site B serves the replica and writes; then it replicates back to A's prefix.
  const siteB = await openObjectBackstore(spec(b, 'fbb', 'dr/fb'), { stateDir: dir });
  try {
    await put(siteB, 4 * MiB, randomBytes(4 * MiB));
    for (let i = 0; i < 50; i++) await put(siteB, 40 * MiB + i * 8192, randomBytes(4096));
    await siteB.flush();
    await waitFor(() => stats(siteB).dirty_bytes === 0, 20_000, 'site B to upload');
    const so = { ...spec(b, 'fbb', 'dr/fb'), attributes: {} } as Record<string, unknown>;
    (await siteB.reconfigure!({ ...so, replica: replicaOf(a, 'vols/fb') }))();
    await caughtUp(siteB);
    const s = stats(siteB);
    const added = (await a.listKeys('vols/fb/')).filter((k) => !aKeys.has(k) && /\/(chunks|segments)\//.test(k));
    const bData = (await b.listKeys('dr/fb/')).filter((k) => /\/(chunks|segments)\//.test(k)).length;
    console.log(`# failback: ${s.replica_objects_copied} objects copied back (${added.length} data objects new at A; B holds ${bData})`);
    assert.ok(added.length >= 2 && added.length < bData, `only what A lacked was copied (${added.length} of ${bData} data objects)`);
    assert.ok(Number(s.replica_objects_copied) <= added.length + 20, 'no object A already held was sent again');
    await assertComplete(a, 'vols/fb/');
  } finally {
    await siteB.close();
  }
  // Switch back: A opens its own prefix (its old cache dir) and sees B's writes.
  siteA = await openObjectBackstore(spec(a, 'fa', 'vols/fb'), { stateDir: dir });
  try {
    assert.ok((await readAll(siteA, 64 * MiB)).equals(image), 'site A serves the image site B wrote');
    await put(siteA, 0, randomBytes(4096));
    await siteA.flush();
    assert.ok((await readAll(siteA, MiB)).equals(image.subarray(0, MiB)));
  } finally {
    await siteA.close();
  }
});

test('after a restart replication resumes from what the replica holds: only the missing objects, fetched from the primary', { timeout: 120_000 }, async () => {
  const image = Buffer.alloc(64 * MiB);
  const put = async (bs: Backstore, off: number, data: Buffer) => { await bs.write(off, [data]); data.copy(image, off); };
  const withReplica = { ...spec(a, 'rs', 'vols/rs'), replica: replicaOf(b, 'dr/rs') } as ObjectBackstoreSpec;
  let bs = await openObjectBackstore(withReplica, { stateDir: dir });
  await put(bs, 0, randomBytes(20 * MiB));
  await bs.flush();
  await caughtUp(bs);
  await bs.close();
  const held = (await b.listKeys('dr/rs/')).filter((k) => /\/(chunks|segments)\//.test(k)).length;
  // Written while replication is off (as if the agent had stopped before the replica took it).
  bs = await openObjectBackstore(spec(a, 'rs', 'vols/rs'), { stateDir: dir });
  await put(bs, 32 * MiB, randomBytes(8 * MiB));
  await bs.flush();
  await bs.close();
  bs = await openObjectBackstore(withReplica, { stateDir: dir });
  try {
    await caughtUp(bs);
    const s = stats(bs);
    const now = (await b.listKeys('dr/rs/')).filter((k) => /\/(chunks|segments)\//.test(k)).length;
    console.log(`# resume: replica held ${held} data objects, now ${now}; ${s.replica_objects_fetched} fetched from the primary, ${s.replica_objects_copied} copied`);
    assert.ok(Number(s.replica_objects_fetched) >= 2, 'the bodies no tee holds came from the primary bucket');
    assert.ok(Number(s.replica_objects_copied) <= now - held + 8, `only what the replica lacked was sent (${s.replica_objects_copied} objects)`);
    await assertComplete(b, 'dr/rs/');
  } finally {
    await bs.close();
  }
  const restored = await openObjectBackstore(spec(b, 'rs2', 'dr/rs'), { stateDir: dir });
  try {
    assert.ok((await readAll(restored, 64 * MiB)).equals(image), 'the replica restores the bytes written while replication was off');
  } finally {
    await restored.close();
  }
});

test('once a failover serves the replica, the old primary stops replicating into it and says why', { timeout: 120_000 }, async () => {
  const primary = await openObjectBackstore({ ...spec(a, 'fo', 'vols/fo'), replica: replicaOf(b, 'dr/fo') } as ObjectBackstoreSpec, { stateDir: dir });
  try {
    await primary.write(0, [randomBytes(4 * MiB)]);
    await primary.flush();
    await caughtUp(primary);
    // Site B opens the replica as its writer (the primary site is thought lost) and writes.
    const siteB = await openObjectBackstore(spec(b, 'fob', 'dr/fo'), { stateDir: dir });
    try {
      const mine = randomBytes(MiB);
      await siteB.write(8 * MiB, [mine]);
      await siteB.flush();
      await waitFor(() => stats(siteB).dirty_bytes === 0 && stats(siteB).oldest_dirty_age_ms === 0, 20_000, 'site B to commit');
      const rootsBefore = await b.listKeys('dr/fo/roots/');
      await primary.write(16 * MiB, [randomBytes(MiB)]);
      await primary.flush();
      await waitFor(() => /is now served by .*writer lease/.test(String(stats(primary).replica_last_error)), 30_000, 'the old primary to stop replicating');
      assert.equal(stats(primary).replica_state, 'behind');
      assert.deepEqual(await b.listKeys('dr/fo/roots/'), rootsBefore, 'no root of the old primary reached the failed-over replica');
      assert.ok((await siteB.read(8 * MiB, MiB)).equals(mine));
    } finally {
      await siteB.close();
    }
  } finally {
    await primary.close();
  }
});
