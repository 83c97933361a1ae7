// The object cache's chunk-file writes (docs/bucket-format.md §Local cache): writes to many chunks issued together
// share pwritev batches on the cache's writer thread (each write names its own chunk file), and read back exactly.
// The chunk store beneath is the in-memory held remote: nothing is uploaded while the test runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fastIo } from '../../../agent/native/fast-io.js';
import { CHUNK, heldCache } from './held-remote.js';

const skip = !fastIo() && 'fast-io addon not built';

test('4 KiB writes to 16 chunks issued together go out in shared batches and read back', { skip }, async () => {
  const { cache, dispose } = await heldCache('cache-batch', 16);
  try {
    // One write per chunk first, so every chunk file exists; then 256 writes, 16 per chunk, all in flight at once.
    await Promise.all(Array.from({ length: 16 }, (_, c) => cache.write(c * CHUNK, [Buffer.alloc(4096, 1)])));
    const before = cache.stats();
    const writes = Array.from({ length: 256 }, (_, i) => ({ at: (i % 16) * CHUNK + (1 + Math.floor(i / 16)) * 8192, data: randomBytes(4096) }));
    await Promise.all(writes.map((w) => cache.write(w.at, [w.data])));
    const after = cache.stats();
    const batches = Number(after.write_batches) - Number(before.write_batches);
    assert.equal(Number(after.batched_writes) - Number(before.batched_writes), 256);
    assert.ok(batches <= 256 / 8, `256 writes to 16 chunk files took ${batches} batches`);
    for (const w of writes) assert.ok((await cache.read(w.at, 4096)).equals(w.data), `data at ${w.at}`);
  } finally {
    await dispose();
  }
});

test('writes into a cached chunk share it and take the fast path; an upload capture waits for them and sees exactly what came before it', { skip }, async () => {
  const { cache, dispose } = await heldCache('cache-shared', 4);
  try {
    await cache.write(0, [randomBytes(CHUNK)]); // chunk 0 whole: every later 4 KiB write into it is covered
    await cache.write(CHUNK, [Buffer.alloc(4096, 3)]); // chunk 1: one block held
    const e = cache.entries.get(0)!;
    await cache.capture(e, true); // as an upload would: what was written so far is taken
    const held = () => Number(cache.stats().cached_bytes);
    assert.equal(held(), CHUNK + 4096);
    const fast0 = Number(cache.stats().fast_writes);
    const block = (i: number) => ({ at: i * 8192, data: randomBytes(4096) });
    const before = Array.from({ length: 32 }, (_, i) => block(i));
    const after = Array.from({ length: 32 }, (_, i) => block(100 + i));
    const first = before.map((w) => cache.write(w.at, [w.data]));
    assert.ok(e.lock.locked, 'the writes in flight hold the chunk (shared)');
    const captured = cache.capture(e, false);
    const second = after.map((w) => cache.write(w.at, [w.data]));
    // Chunk 1: a write over the held block (fast) and one over blocks not held (the slow path reserves room).
    const other = [cache.write(CHUNK, [Buffer.alloc(4096, 4)]), cache.write(CHUNK + 65536, [Buffer.alloc(8192, 5)])];
    await Promise.all([...first, ...second, ...other]);
    const cap = await captured;
    assert.ok(cap, 'capture of a live entry');
    // The capture came after the first 32 writes and before the next 32: it holds exactly the first.
    const got = new Map(cap.runs.map(([s, b]) => [s, b]));
    assert.equal(cap.runs.reduce((n, [, b]) => n + b.length, 0), 32 * 4096, 'captured bytes');
    for (const w of before) assert.ok(got.get(w.at)?.equals(w.data), `captured block at ${w.at}`);
    assert.equal(cache.writtenBytes(e), 32 * 4096, 'the later writes are the next upload\'s');
    assert.equal(Number(cache.stats().fast_writes) - fast0, 33, 'the first 32 writes and the covered one of chunk 1 took the fast path');
    assert.equal(held(), CHUNK + 4096 + 8192, 'bytes held count each new sector once');
    for (const w of [...before, ...after]) assert.ok((await cache.read(w.at, 4096)).equals(w.data), `data at ${w.at}`);
    assert.ok((await cache.read(CHUNK, 4096)).equals(Buffer.alloc(4096, 4)));
    assert.ok((await cache.read(CHUNK + 65536, 8192)).equals(Buffer.alloc(8192, 5)));
  } finally {
    await dispose();
  }
});
