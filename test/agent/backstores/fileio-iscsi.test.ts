// fileio through iSCSI with qemu-io and qemu-img (libiscsi): data not in the page cache (threadpool path) and then
// cached (preadv2 RWF_NOWAIT on the event loop) reads back byte-identical (issue 15).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openBackstore } from '../../../agent/backstores/index.js';
import type { Backstore } from '../../../agent/backstores/backstore.js';
import { createLogicalUnit } from '../../../agent/scsi/logical-unit.js';
import { FAST_IO_PATH } from '../../../agent/native/fast-io.js';
import { TestRegistry, lunView } from '../../helpers/iscsi-registry.js';
import { startFabric, realCore, run, type Fabric } from '../../helpers/iscsi-fixture.js';
import { REPO } from '../../helpers/agent.js';

const INITIATOR = 'iqn.2026-01.test:fastio-host';
const TARGET = 'iqn.2026-01.test:fastio';
const SIZE = 16 << 20;

let fabric: Fabric;
let dir: string;
let path: string;
let store: Backstore;
let lu: { close(): Promise<void> };

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outpost-fastio-iscsi-'));
  if (!existsSync(FAST_IO_PATH)) await run(process.execPath, [join(REPO, 'agent/native/build.mjs')], {}, 120_000);
  path = join(dir, 'lun.img');
  store = await openBackstore({ plugin: 'fileio', name: 'fastio', dev: path, size: SIZE, writeBack: true }, { stateDir: dir });
  const handle = await createLogicalUnit({
    name: '/backstores/fileio/fastio', wwn: '6a1f0c2e-0000-4000-8000-00000000f10f', backstore: store, attributes: {}, aluaGroups: [], stateDir: dir,
  });
  lu = handle;
  const registry = new TestRegistry();
  fabric = await startFabric(registry, realCore());
  registry.addTarget({ name: TARGET, tpgs: [{ portals: [{ ip: '127.0.0.1', port: fabric.port }], acls: [{ initiatorName: INITIATOR, luns: lunView([handle]) }] }] });
});

after(async () => {
  await fabric?.close();
  await lu?.close();
  await rm(dir, { recursive: true, force: true });
});

const image = () => `driver=iscsi,transport=tcp,portal=127.0.0.1:${fabric.port},target=${TARGET},lun=0,initiator-name=${INITIATOR}`;

async function residentBytes(p: string): Promise<number> {
  const r = await run('fincore', ['-n', '-b', '-o', 'RES', p]);
  assert.equal(r.code, 0, r.stderr);
  return Number(r.stdout.trim());
}

const BLOCK = 64 << 10;
const pattern = (i: number) => (i % 251) + 1;

/** qemu-io reads of every 64 KiB block (plus 4 KiB ones inside some), each checked against its fill byte. */
async function readBlocks(): Promise<void> {
  const cmds: string[] = [];
  for (let i = 0; i < SIZE / BLOCK; i++) {
    cmds.push('-c', `read -P ${pattern(i)} ${i * BLOCK} ${BLOCK}`);
    if (i % 16 === 5) cmds.push('-c', `read -P ${pattern(i)} ${i * BLOCK + 12288} 4096`);
  }
  const r = await run('qemu-io', ['-r', ...cmds, '--image-opts', image()], {}, 60_000);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /Pattern verification failed|error|failed/i, r.stdout.slice(0, 2000));
  assert.equal(r.stdout.match(/read \d+\/\d+ bytes/g)?.length, cmds.length / 2);
}

async function readBack(name: string): Promise<Buffer> {
  const out = join(dir, name);
  const r = await run('qemu-img', ['convert', '--image-opts', image(), '-O', 'raw', out], {}, 60_000);
  assert.equal(r.code, 0, r.stderr);
  const b = await readFile(out);
  await rm(out);
  return b;
}

test('qemu-img reads uncached data through the threadpool and cached data on the fast path, byte-identical', async () => {
  const stats = () => store.stats!() as { fast_io: string; cached_reads: number; threadpool_reads: number };
  assert.equal(stats().fast_io, 'preadv2-nowait', 'fast-io addon not in use');
  const data = Buffer.alloc(SIZE);
  for (let i = 0; i < SIZE / BLOCK; i++) data.fill(pattern(i), i * BLOCK, (i + 1) * BLOCK);
  const src = join(dir, 'src.raw');
  await writeFile(src, data);
  // O_DIRECT writes put the bytes on disk and drop the LUN file's pages from the page cache.
  const dd = await run('dd', [`if=${src}`, `of=${path}`, 'bs=1M', 'oflag=direct', 'conv=notrunc', 'status=none']);
  assert.equal(dd.code, 0, dd.stderr);
  assert.equal(await residentBytes(path), 0, 'LUN file still cached');

  const s0 = stats();
  await readBlocks();
  const s1 = stats();
  assert.ok(s1.threadpool_reads - s0.threadpool_reads > 0, 'no read went to the threadpool');
  assert.ok((await residentBytes(path)) >= SIZE / 2, 'reads did not populate the page cache');

  await readBlocks();
  const s2 = stats();
  assert.ok(s2.cached_reads - s1.cached_reads > 0, `no read was served from the page cache: ${JSON.stringify([s0, s1, s2])}`);
  assert.ok(s2.cached_reads - s1.cached_reads >= s2.threadpool_reads - s1.threadpool_reads, `hits ${s2.cached_reads - s1.cached_reads}, misses ${s2.threadpool_reads - s1.threadpool_reads}`);
  // And the whole LUN in qemu-img's 2 MiB requests (above the event-loop limit: threadpool), byte for byte.
  assert.ok((await readBack('all.raw')).equals(data), 'read-back differs');
});
