// fileio backstore: sparse creation, positional writev/read, hole punching, durability modes, errors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackstoreErrorCode } from '../../../agent/backstores/backstore.js';
import { openBackstore } from '../../../agent/backstores/index.js';

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-fileio-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('fileio backstore', () => {
  it('refuses a missing file without a size, naming the backstore and path', () =>
    withDir(async (dir) => {
      const path = join(dir, 'nope.img');
      await assert.rejects(openBackstore({ plugin: 'fileio', name: 'file1', dev: path, writeBack: true }, { stateDir: dir }), {
        message: `fileio file1: ${path} does not exist and no size given`,
      });
      await assert.rejects(stat(path), { code: 'ENOENT' });
    }));

  it('creates the file sparse at the given size and round-trips scattered writes', () =>
    withDir(async (dir) => {
      const path = join(dir, 'f.img');
      const bs = await openBackstore({ plugin: 'fileio', name: 'f', dev: path, size: 256 << 20, writeBack: true }, { stateDir: dir });
      try {
        const st = await stat(path);
        assert.equal(st.size, 256 << 20);
        assert.ok(st.blocks * 512 < 1 << 20, 'a new file is sparse');
        assert.equal(bs.thinProvisioned, true);
        await bs.write(4096, [Buffer.from('hello '), Buffer.from('world')]);
        assert.equal((await bs.read(4096, 11)).toString(), 'hello world');
        assert.deepEqual(await bs.read(0, 16), Buffer.alloc(16));
        await bs.flush();
        await assert.rejects(bs.read((256 << 20) - 4, 8), { code: BackstoreErrorCode.RANGE });
      } finally {
        await bs.close();
      }
      await assert.rejects(bs.read(0, 1), { code: BackstoreErrorCode.CLOSED });
    }));

  it('unmap punches holes (space is freed) and the range reads as zeros', () =>
    withDir(async (dir) => {
      const path = join(dir, 'f.img');
      const bs = await openBackstore({ plugin: 'fileio', name: 'f', dev: path, size: 16 << 20, writeBack: false }, { stateDir: dir });
      try {
        await bs.write(0, [Buffer.alloc(8 << 20, 0x5a)]);
        const before = (await stat(path)).blocks;
        await bs.unmap(0, 8 << 20);
        const after = (await stat(path)).blocks;
        assert.ok(after < before / 2, `blocks ${before} → ${after}`);
        assert.ok((await bs.read(0, 8 << 20)).equals(Buffer.alloc(8 << 20)));
        await bs.write(0, [Buffer.alloc(4096, 1)]);
        await bs.unmap(512, 1024); // small range: zero-filled
        const b = await bs.read(0, 4096);
        assert.equal(b[511], 1);
        assert.equal(b[512], 0);
        assert.equal(b[1535], 0);
        assert.equal(b[1536], 1);
      } finally {
        await bs.close();
      }
    }));

  it('opens an existing file at its own size and keeps its data', () =>
    withDir(async (dir) => {
      const path = join(dir, 'old.img');
      await writeFile(path, Buffer.alloc(1 << 20, 7));
      const bs = await openBackstore({ plugin: 'fileio', name: 'old', dev: path, writeBack: true }, { stateDir: dir });
      try {
        assert.equal(bs.size, 1 << 20);
        assert.deepEqual(await bs.read(100, 4), Buffer.alloc(4, 7));
      } finally {
        await bs.close();
      }
    }));
});
