// Data-path read buffers (agent/lib/slab.ts) and the fileio store's in-flight accounting on close.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allocData, isPooled, releaseData } from '../../../agent/lib/slab.js';
import { openFileio } from '../../../agent/backstores/fileio.js';
import { BackstoreErrorCode } from '../../../agent/backstores/backstore.js';

describe('data buffers', () => {
  it('carves small buffers out of one slab without overlap', () => {
    const a = allocData(4096);
    const b = allocData(4096);
    assert.equal(a.length, 4096);
    assert.equal(a.buffer, b.buffer, 'consecutive small buffers share a slab');
    a.fill(1);
    b.fill(2);
    assert.ok(a.every((x) => x === 1), 'writing b leaves a intact');
    assert.equal(isPooled(a), false, 'slab views are never recycled');
  });

  it('recycles a released large buffer once, and ignores foreign buffers', () => {
    const big = allocData(128 * 1024);
    assert.equal(big.length, 128 * 1024);
    assert.ok(isPooled(big));
    releaseData(big);
    releaseData(big); // a second release must not put it on the free list twice
    const again = allocData(100 * 1024);
    assert.equal(again.buffer, big.buffer, 'same class comes from the free list');
    assert.equal(again.length, 100 * 1024);
    const other = allocData(128 * 1024);
    assert.notEqual(other.buffer, big.buffer, 'a buffer released once is lent out once');
    releaseData(Buffer.alloc(128 * 1024)); // not ours: ignored
    assert.equal(isPooled(Buffer.alloc(128 * 1024)), false);
  });
});

describe('fileio store close with I/O in flight', () => {
  it('finishes every pending read with the right bytes before the descriptor is closed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-slab-'));
    try {
      const path = join(dir, 'lun.img');
      const content = randomBytes(1 << 20);
      await writeFile(path, content);
      const store = await openFileio({ name: 'f', path, writeBack: true });
      const offsets = Array.from({ length: 64 }, (_, i) => ((i * 37) % 256) * 4096);
      const reads = offsets.map((off) => store.read(off, 4096));
      const closed = store.close();
      const got = await Promise.all(reads);
      await closed;
      got.forEach((b, i) => assert.ok(b.equals(content.subarray(offsets[i]!, offsets[i]! + 4096)), `read ${i}`));
      await assert.rejects(store.read(0, 512), { code: BackstoreErrorCode.CLOSED });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
