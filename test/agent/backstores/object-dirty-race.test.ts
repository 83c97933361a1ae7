// Regression (issue 17): a write that lands in a chunk while that chunk's previous upload is being staged must
// stay dirty. The flusher used to mark the chunk clean when its "written" map was empty at stage time, which is
// also the case while a write is between taking the chunk lock and marking what it wrote; that write was then
// acknowledged, never uploaded, left out of the journal and evicted. Uploads of zeros (no PUT) stage within
// microseconds of their capture, so a write queued behind the capture hits that window every time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { openObjectBackstore } from '../../../agent/backstores/object.js';
import { fixture, MiB, type Fixture } from './object-fixture.js';

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

test('a write queued behind an upload of the same chunk is uploaded too (closed, cache dropped, read back from the bucket)', { timeout: 180_000 }, async () => {
  const CHUNKS = 16;
  const spec = fx.spec('race', { size: 128 * MiB, cache_size: 96 * MiB, upload_delay_ms: 0, commit_interval_ms: 50 });
  const zeros = Buffer.alloc(4 * MiB);
  const data = Array.from({ length: CHUNKS }, () => randomBytes(64 * 1024));
  let bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  try {
    for (let i = 0; i < CHUNKS; i++) {
      // A whole chunk of zeros is uploaded at once (upload_delay_ms 0) and costs no PUT; the data written right
      // after it waits for the upload's capture of the chunk and then races its staging.
      await bs.write(i * 4 * MiB, [zeros]);
      await bs.write(i * 4 * MiB + MiB, [data[i]!]);
    }
    await bs.flush();
  } finally {
    await bs.close();
  }
  await rm(join(fx.stateDir, 'cache', 'race'), { recursive: true, force: true });
  bs = await openObjectBackstore(spec, { stateDir: fx.stateDir });
  try {
    const lost: number[] = [];
    for (let i = 0; i < CHUNKS; i++) {
      if (!(await bs.read(i * 4 * MiB + MiB, data[i]!.length)).equals(data[i]!)) lost.push(i);
    }
    assert.deepEqual(lost, [], `acknowledged writes missing from the bucket in chunks ${lost.join(', ')}`);
  } finally {
    await bs.close();
  }
});
