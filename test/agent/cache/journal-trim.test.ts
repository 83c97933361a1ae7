// The journal's two kinds of round (agent/cache/journal.ts): a flush (full round) fdatasyncs every chunk file written
// since the last one and names it with its valid map; the round after a manifest (trim) syncs no chunk file, so it
// names only what is already durable — a chunk dirtied since the last flush is left out, and a named chunk keeps the
// valid map that was synced, never one that counts sectors whose data may not be on disk yet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readJournal } from '../../../agent/cache/journal.js';
import { SectorBitmap } from '../../../agent/cache/bitmap.js';
import { CHUNK, heldCache } from './held-remote.js';

test('a trim round names only synced chunks with their synced valid maps; the next flush names everything', async () => {
  const { cache, dir, dispose } = await heldCache('journal-trim', 4);
  const sectors = (v: string | null) => (v === null ? CHUNK / 512 : SectorBitmap.fromBase64(CHUNK / 512, v).count);
  const named = async () => new Map((await readJournal(dir))!.dirty.map((d) => [d.i, d.v]));
  try {
    await cache.write(0, [Buffer.alloc(4096, 1)]);
    await cache.flush();
    assert.deepEqual([...(await named()).keys()], [0]);
    assert.equal(sectors((await named()).get(0)!), 8);
    // Unflushed: 4 KiB more in chunk 0, a first write to chunk 1.
    await cache.write(65536, [Buffer.alloc(4096, 2)]);
    await cache.write(CHUNK, [Buffer.alloc(4096, 3)]);
    await cache.journal.sync(false);
    const trim = await named();
    assert.deepEqual([...trim.keys()], [0], 'chunk 1 was never synced: a trim round does not name it');
    assert.equal(sectors(trim.get(0)!), 8, 'chunk 0 keeps the valid map of the last flush');
    await cache.flush();
    const full = await named();
    assert.deepEqual([...full.keys()].sort(), [0, 1]);
    assert.equal(sectors(full.get(0)!), 16);
    assert.equal(sectors(full.get(1)!), 8);
    // Now synced: a trim round names both as they are.
    await cache.journal.sync(false);
    const again = await named();
    assert.equal(sectors(again.get(0)!), 16);
    assert.equal(sectors(again.get(1)!), 8);
  } finally {
    await dispose();
  }
});
