// The object cache's chunk-file writes (docs/bucket-format.md §Local cache): writes to many chunks issued together
// share pwritev batches on the cache's writer thread (each write names its own chunk file), and read back exactly.
// The chunk store beneath is the in-memory held remote: nothing is uploaded while the test runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkCache } from '../../../agent/cache/chunk-cache.js';
import { fastIo } from '../../../agent/native/fast-io.js';
import { silentLogger } from '../../../agent/lib/log.js';
import { CHUNK, heldRemote } from './held-remote.js';

const skip = !fastIo() && 'fast-io addon not built';

test('4 KiB writes to 16 chunks issued together go out in shared batches and read back', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-cache-batch-'));
  const remote = heldRemote(new Map());
  const cache = await ChunkCache.open({
    dir, size: 16 * CHUNK, chunkSize: CHUNK, capacity: 16 * CHUNK, writeBack: true, remote, readTimeoutMs: 5000,
    uploadConcurrency: 2, retryBaseMs: 50, retryMaxMs: 500, commitIntervalMs: 60_000, uploadDelayMs: 60_000, readAhead: 0,
    writeTimeoutMs: 5000, log: silentLogger,
  });
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
    remote.release();
    await cache.close(5000);
    await rm(dir, { recursive: true, force: true });
  }
});
