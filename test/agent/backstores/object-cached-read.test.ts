// Object LUN cache hits on the event loop (issue 15): a hit inside one chunk is read with preadv2(RWF_NOWAIT)
// from the chunk file; sectors the cache does not hold, chunk files out of the page cache and reads across
// chunks take the ordinary path. Same bytes every way.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import { fixture, MiB, type Fixture } from './object-fixture.js';
import { run } from '../../helpers/iscsi-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

test('cache hits are served on the event loop; partial chunks, evicted pages and cross-chunk reads still read right', async () => {
  const cacheDir = join(fx.stateDir, 'fast-cache');
  const bs = await openObjectBackstore(fx.spec('fast', { size: 64 * MiB, cache_size: 32 * MiB, cache_dir: cacheDir }), { stateDir: fx.stateDir });
  const fast = () => Number(bs.stats!().fast_reads);
  try {
    const chunk = 4 * MiB;
    const data = randomBytes(2 * chunk);
    await bs.write(0, [data]);
    await bs.flush();
    // The first read of a chunk waits for its entry (readPieces); later hits inside it need no promise chain.
    assert.ok((await bs.read(4096, 4096)).equals(data.subarray(4096, 8192)));
    const f0 = fast();
    for (const [off, len] of [[0, 4096], [12288, 4096], [chunk - 131072, 131072], [chunk + 65536, 131072]] as const) {
      assert.ok((await bs.read(off, len)).equals(data.subarray(off, off + len)), `read ${off}+${len}`);
    }
    assert.ok(fast() - f0 >= 3, `only ${fast() - f0} of 4 hits served on the event loop`);
    // Across the chunk boundary: two pieces, the ordinary path, the same bytes.
    const f1 = fast();
    assert.ok((await bs.read(chunk - 4096, 8192)).equals(data.subarray(chunk - 4096, chunk + 4096)));
    assert.equal(fast(), f1);

    // A chunk holding only a few written sectors (sparse file): a hit inside them is fast, the rest reads as zeros.
    const w = randomBytes(8192);
    await bs.write(5 * chunk + 65536, [w]);
    assert.ok((await bs.read(5 * chunk + 65536, 8192)).equals(w));
    const f2 = fast();
    assert.ok((await bs.read(5 * chunk + 65536 + 4096, 4096)).equals(w.subarray(4096)));
    assert.equal(fast(), f2 + 1);
    assert.ok((await bs.read(5 * chunk, 65536)).equals(Buffer.alloc(65536)), 'sectors never written read as zeros');
    assert.equal(fast(), f2 + 1, 'a range the chunk does not hold took the event-loop path');

    // Chunk files dropped from the page cache: RWF_NOWAIT says EAGAIN, the threadpool path reads them. The flusher
    // finishes first (an upload capturing a chunk would read its pages back in). posix_fadvise(DONTNEED) skips pages it
    // cannot drop at that moment (a busy machine shows it now and then), so the drop is tried up to 5 times, each
    // with a read at a new offset; one of them must miss the page cache and still return the right bytes.
    await bs.syncToBucket!().done;
    let missed = false;
    for (let attempt = 0; attempt < 5 && !missed; attempt++) {
      for (const f of (await filesUnder(cacheDir)).filter((p) => p.includes('/chunks/'))) {
        const r = await run('dd', [`if=${f}`, 'iflag=nocache', 'count=0', 'status=none']);
        assert.equal(r.code, 0, r.stderr);
      }
      const at = chunk + 1048576 + attempt * 262144;
      const f3 = fast();
      assert.ok((await bs.read(at, 4096)).equals(data.subarray(at, at + 4096)), `read of evicted pages at ${at}`);
      missed = fast() === f3;
    }
    assert.ok(missed, 'every read of evicted pages was served on the event loop');
  } finally {
    await bs.close();
  }
});
