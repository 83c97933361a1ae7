// rd_mcp backstore: memory allocated on first write, zeros for unwritten ranges, unmap frees chunks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BackstoreErrorCode } from '../../../agent/backstores/backstore.js';
import { openBackstore } from '../../../agent/backstores/index.js';
import { Ramdisk } from '../../../agent/backstores/ramdisk.js';

describe('rd_mcp backstore', () => {
  it('a 1 GiB ramdisk allocates only what is written, across chunk boundaries', async () => {
    const bs = (await openBackstore({ plugin: 'rd_mcp', name: 'rd', size: 1 << 30 }, { stateDir: '/nonexistent' })) as Ramdisk;
    try {
      assert.equal(bs.stats().allocatedBytes, 0);
      const data = Buffer.alloc(4096);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
      const at = (1 << 20) - 1000; // spans chunks 0 and 1
      await bs.write(at, [data.subarray(0, 10), data.subarray(10)]);
      assert.equal(bs.stats().allocatedBytes, 2 << 20);
      assert.deepEqual(await bs.read(at, 4096), data);
      assert.deepEqual(await bs.read(500 << 20, 8), Buffer.alloc(8));
      await bs.unmap(1 << 20, 1 << 20); // whole chunk 1: freed
      assert.equal(bs.stats().allocatedBytes, 1 << 20);
      assert.deepEqual(await bs.read(1 << 20, 16), Buffer.alloc(16));
      assert.deepEqual(await bs.read(at, 1000), data.subarray(0, 1000));
      await assert.rejects(bs.write((1 << 30) - 1, [Buffer.alloc(2)]), { code: BackstoreErrorCode.RANGE });
    } finally {
      await bs.close();
    }
    await assert.rejects(bs.read(0, 1), { code: BackstoreErrorCode.CLOSED });
  });

  it('nullio discards writes and reads zeros', async () => {
    const bs = await openBackstore({ plugin: 'rd_mcp', name: 'n', size: 1 << 20, nullio: true }, { stateDir: '/nonexistent' });
    await bs.write(0, [Buffer.alloc(512, 9)]);
    assert.deepEqual(await bs.read(0, 4), Buffer.alloc(4));
    await bs.close();
  });
});
