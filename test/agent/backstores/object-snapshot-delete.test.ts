// Snapshot delete against s3rver (docs/bucket-format.md §Snapshot, clone): deleting a snapshot deletes exactly
// the objects it alone referenced — never one a root, another snapshot or a clone names — and finds them without
// listing the prefix's data objects (LIST requests counted by an HTTP proxy in front of s3rver).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import type { Backstore } from '../../../agent/backstores/backstore.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { readRoot, keysOf, loadNewestRoot } from '../../../agent/backstores/object/roots.js';
import { keys } from '../../../agent/backstores/object/format.js';
import type { VolumeSnapshots } from '../../../agent/backstores/object/snapshots.js';
import { fixture, waitFor, MiB, type Fixture } from './object-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

const snaps = (bs: Backstore): VolumeSnapshots => (bs as unknown as { snapshots: VolumeSnapshots }).snapshots;
const fill = (v: number, n = 4 * MiB): Buffer => Buffer.alloc(n, v);

/** An HTTP proxy to s3rver that records the prefix of every ListObjects request. */
async function listCounter(upstream: string): Promise<{ endpoint: string; lists: string[]; close(): Promise<void> }> {
  const up = new URL(upstream);
  const lists: string[] = [];
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (req.method === 'GET' && (u.searchParams.has('list-type') || u.searchParams.has('prefix'))) lists.push(u.searchParams.get('prefix') ?? '');
    const p = request({ host: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    p.on('error', () => res.destroy());
    req.pipe(p);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, lists,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

test('deleting a snapshot frees only what it alone referenced, keeps what roots, snapshots and clones name, with a bounded number of LISTs', { timeout: 240_000 }, async () => {
  const proxy = await listCounter(fx.s3.endpoint);
  const prefix = 'vols/sd/';
  const opts = { size: 64 * MiB, cache_size: 16 * MiB, commit_interval_ms: 100, upload_delay_ms: 20, endpoint: proxy.endpoint };
  const bs = await openObjectBackstore(fx.spec('sd', opts), { stateDir: fx.stateDir });
  const bucket = new Bucket({ bucket: fx.s3.bucket, endpoint: fx.s3.endpoint, forcePathStyle: true });
  let clone: Backstore | undefined;
  try {
    // Chunks 0-3 whole, plus small writes (segments): snapshot A.
    for (let i = 0; i < 4; i++) await bs.write(i * 4 * MiB, [fill(0x10 + i)]);
    for (let i = 0; i < 8; i++) await bs.write(32 * MiB + i * 64 * 1024, [fill(0x20 + i, 4096)]);
    await snaps(bs).create('a');
    // Chunk 0 and two small writes rewritten, then snapshot B shares chunks 1-3 with A; a clone of B.
    await bs.write(0, [fill(0x31)]);
    await bs.write(32 * MiB, [fill(0x32, 4096)]);
    await bs.write(32 * MiB + 64 * 1024, [fill(0x33, 4096)]);
    await snaps(bs).create('b');
    clone = await openObjectBackstore(fx.spec('sdc', { ...opts, source: `${prefix}@b` }), { stateDir: fx.stateDir });
    assert.ok((await clone.read(4 * MiB, 4096)).equals(fill(0x11, 4096)));
    // The live volume moves on: chunk 1 rewritten (still named by A, B and the clone), many generations later.
    for (let g = 0; g < 5; g++) {
      await bs.write(4 * MiB, [fill(0x40 + g)]);
      await bs.flush();
      await waitFor(() => bs.stats!().dirty_bytes === 0 && bs.stats!().uploads_in_flight === 0, 60_000, 'uploads');
      await new Promise((r) => setTimeout(r, 250));
    }

    const named = (k: string): boolean => /\/(chunks|segments|pages)\//.test(k);
    const aKeys = keysOf(prefix, await readRoot(bucket, prefix, keys.snapshot(prefix, 'a'), 4 * MiB, 10_000)).filter(named);
    const bKeys = keysOf(prefix, await readRoot(bucket, prefix, keys.snapshot(prefix, 'b'), 4 * MiB, 10_000)).filter(named);
    const cloneKeys = keysOf('vols/sdc/', (await loadNewestRoot(bucket, 'vols/sdc/', 4 * MiB, 10_000))!).filter((k) => k.startsWith(prefix));
    const live = keysOf(prefix, (await loadNewestRoot(bucket, prefix, 4 * MiB, 10_000))!).filter(named);
    const kept = new Set([...bKeys, ...cloneKeys, ...live]);
    const alone = aKeys.filter((k) => !kept.has(k));
    assert.ok(alone.length >= 2, `snapshot a holds objects of its own (${alone.length})`);
    assert.ok(aKeys.some((k) => kept.has(k)), 'snapshot a shares objects with b');
    const present0 = new Set(await fx.s3.listKeys(prefix));
    for (const k of alone) assert.ok(present0.has(k), `${k} present before the delete`);

    proxy.lists.length = 0;
    const freed = await snaps(bs).delete('a');
    const lists = [...proxy.lists];

    const present = new Set(await fx.s3.listKeys(prefix));
    for (const k of kept) assert.ok(present.has(k), `${k} is referenced by a root, snapshot b or the clone, and was deleted`);
    for (const k of alone) assert.ok(!present.has(k), `${k} was referenced by snapshot a alone and is still in the bucket`);
    assert.ok(!present.has(keys.snapshot(prefix, 'a')));
    assert.ok(freed >= alone.length + 1, `freed ${freed}`);
    // No listing of the data objects (the full sweep lists segments/, chunks/ and pages/): roots, snapshots and
    // the clone's roots only.
    for (const p of lists) assert.ok(!/\/(segments|chunks|pages)\/$/.test(p), `snapshot delete listed ${p} (${lists.join(', ')})`);
    assert.ok(lists.length <= 6, `${lists.length} LIST requests: ${lists.join(', ')}`);
    console.log(`# snapshot delete: ${freed} objects deleted, ${lists.length} LISTs (${lists.join(', ')})`);

    // Everything still reads.
    assert.ok((await bs.read(4 * MiB, 4096)).equals(fill(0x44, 4096)));
    assert.ok((await bs.read(8 * MiB, 4096)).equals(fill(0x12, 4096)));
    assert.ok((await clone.read(0, 4096)).equals(fill(0x31, 4096)));
    assert.ok((await clone.read(32 * MiB + 64 * 1024, 4096)).equals(fill(0x33, 4096)));
    assert.ok((await clone.read(32 * MiB + 2 * 64 * 1024, 4096)).equals(fill(0x22, 4096)));
  } finally {
    await clone?.close().catch(() => undefined);
    await bs.close().catch(() => undefined);
    bucket.destroy();
    await proxy.close();
  }
});
