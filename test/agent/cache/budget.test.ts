// Block cache budget (docs/bucket-format.md §Local cache): a read of a partly cached chunk while the cache is full
// of data not yet uploaded must not grow the cache past cache_size. The chunk store beneath the cache is an
// in-memory ChunkRemote (our own interface) whose uploads wait until the test lets them go, so "full of dirty
// data" is a state the test holds, not a race it hopes to win.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkCache } from '../../../agent/cache/chunk-cache.js';
import { silentLogger } from '../../../agent/lib/log.js';
import { CHUNK, heldRemote } from './held-remote.js';

const MiB = 1024 * 1024;


test('reading a partly cached chunk while the cache is full of dirty data reads right and stays within cache_size', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-cache-budget-'));
  const stored = randomBytes(CHUNK);
  const remote = heldRemote(new Map([[0, stored]]));
  const cache = await ChunkCache.open({
    dir, size: 64 * MiB, chunkSize: CHUNK, capacity: 2 * CHUNK, writeBack: true, remote, readTimeoutMs: 5000,
    uploadConcurrency: 2, retryBaseMs: 50, retryMaxMs: 500, commitIntervalMs: 100, uploadDelayMs: 50, readAhead: 0,
    writeTimeoutMs: 5000, log: silentLogger,
  });
  try {
    const mine = randomBytes(4096);
    await cache.write(0, [mine]); // chunk 0: one written page over the stored chunk (a sparse entry)
    await cache.write(CHUNK, [randomBytes(CHUNK)]); // chunk 1 whole, dirty
    await cache.write(2 * CHUNK, [randomBytes(8192)]); // and a little of chunk 2
    const budget = 2 * CHUNK;
    assert.ok(cache.heldBytes > CHUNK && cache.heldBytes < budget, `cache holds ${cache.heldBytes}`);

    // Filling chunk 0 into the cache would need ~4 MiB more than the budget has; nothing can be evicted.
    const got = await cache.read(0, CHUNK);
    assert.ok(got.subarray(0, 4096).equals(mine), 'the written page reads back');
    assert.ok(got.subarray(4096).equals(stored.subarray(4096)), 'the rest reads as the bucket holds it');
    assert.ok(cache.heldBytes <= budget, `cache grew to ${cache.heldBytes} bytes for a ${budget}-byte budget`);
    const part = await cache.read(CHUNK - 8192, 16384); // across chunks 0 and 1
    assert.ok(part.subarray(0, 8192).equals(stored.subarray(CHUNK - 8192)));
    assert.ok(cache.heldBytes <= budget);
  } finally {
    remote.release();
    await cache.close(5000);
    await rm(dir, { recursive: true, force: true });
  }
});
