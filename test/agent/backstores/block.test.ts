// block (iblock) backstore: existing device or file only; size from the device; read-only mode.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackstore } from '../../../agent/backstores/index.js';

describe('block backstore', () => {
  it('never creates: a missing device is a clear error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-block-'));
    try {
      const path = join(dir, 'sdz');
      await assert.rejects(openBackstore({ plugin: 'block', name: 'disk1', dev: path }, { stateDir: dir }), { message: `block disk1: ${path} does not exist` });
      await assert.rejects(stat(path), { code: 'ENOENT' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves an existing file at its size, and read-only when asked', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'outpost-block-'));
    try {
      const path = join(dir, 'disk.img');
      await writeFile(path, Buffer.alloc(2 << 20, 3));
      const bs = await openBackstore({ plugin: 'block', name: 'disk', dev: path }, { stateDir: dir });
      assert.equal(bs.size, 2 << 20);
      assert.equal(bs.writeBack, false);
      await bs.write(0, [Buffer.from('abc')]);
      assert.equal((await bs.read(0, 4)).toString('latin1'), 'abc\x03');
      await bs.close();
      const ro = await openBackstore({ plugin: 'block', name: 'disk', dev: path, readonly: true }, { stateDir: dir });
      assert.equal((ro as { readOnly?: boolean }).readOnly, true);
      await assert.rejects(ro.write(0, [Buffer.from('x')]));
      await ro.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
