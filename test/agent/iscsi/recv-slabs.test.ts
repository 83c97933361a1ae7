// Receive slabs (agent/lib/recv-slabs.ts, issue 15): socket reads land in reused slabs; a slab comes back
// only when the reader has moved on and every chunk and payload hold in it is dropped. End to end with
// qemu's iSCSI driver: WRITE data from reused slabs reaches a fileio and a RAM LUN intact, with the
// agent's defaults and with RHEL's TPG parameters (8 KiB Data-Out PDUs, R2T-solicited).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkQueue } from '../../../agent/lib/bytes.js';
import { RecvSlabPool, SLAB_BYTES, SlabReader, recvSlabs, type SlabRef } from '../../../agent/lib/recv-slabs.js';
import { releaseHeld } from '../../../agent/iscsi/receiver.js';
import { openBackstore } from '../../../agent/backstores/index.js';
import { createLogicalUnit } from '../../../agent/scsi/logical-unit.js';
import { TestRegistry, lunView } from '../../helpers/iscsi-registry.js';
import { startFabric, ramdiskLu, realCore, run, type Fabric } from '../../helpers/iscsi-fixture.js';

test('a slab returns to the pool only after the reader moved on and every hold on it is dropped', () => {
  const pool = new RecvSlabPool();
  const reader = new SlabReader(pool);
  const q = new ChunkQueue();
  const first = reader.next();
  first.fill(7, 0, 1000);
  const a = reader.received(1000);
  q.push(a.chunk, a.owner);
  const held: SlabRef[] = [];
  const views = q.consumeViews(600, held);
  assert.equal(held.length, 1);
  assert.equal(views[0]!.buffer, first.buffer, 'the payload is a view of the slab, not a copy');
  q.skip(400); // the rest of the chunk read past: the queue's reference on the slab goes
  // Fill the rest of the slab so the reader must take a new one.
  let got = 1000;
  while (SLAB_BYTES - got >= 64 * 1024) { const n = 64 * 1024; reader.next(); const c = reader.received(n); q.push(c.chunk, c.owner); got += n; }
  q.clear();
  const second = reader.next();
  assert.notEqual(second.buffer, first.buffer);
  assert.equal(pool.freeSlabs, 0, 'the payload still holds the first slab');
  assert.ok(views[0]!.every((b) => b === 7));
  releaseHeld(held);
  assert.equal(pool.freeSlabs, 1, 'released and left by the reader: back in the pool');
  reader.close();
  assert.equal(pool.freeSlabs, 2);
  assert.equal(pool.take().buffer, second.buffer);
  assert.equal(pool.reused, 1);
});

test('a hold nobody releases keeps its slab out of the pool', () => {
  const pool = new RecvSlabPool();
  const reader = new SlabReader(pool);
  const q = new ChunkQueue();
  reader.next();
  const a = reader.received(100);
  q.push(a.chunk, a.owner);
  const held: SlabRef[] = [];
  q.consumeViews(100, held);
  reader.close();
  assert.equal(pool.freeSlabs, 0);
});

const INITIATOR = 'iqn.2026-01.test:slabs-host';
const SIZE = 24 << 20;
let fabric: Fabric;
let dir: string;
const closers: Array<() => Promise<void>> = [];
const targets: string[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'outpost-slabs-'));
  const file = join(dir, 'lun.img');
  await writeFile(file, Buffer.alloc(0));
  const fileStore = await openBackstore({ plugin: 'fileio', name: 'slabs-file', dev: file, size: SIZE, writeBack: true }, { stateDir: dir });
  const fileLu = await createLogicalUnit({
    name: '/backstores/fileio/slabs-file', wwn: '6a1f0c2e-0000-4000-8000-5eab00000001', backstore: fileStore, attributes: {}, aluaGroups: [], stateDir: dir,
  });
  const ramLu = await ramdiskLu('slabs-ram', SIZE);
  closers.push(() => fileLu.close(), () => ramLu.close());
  const registry = new TestRegistry();
  fabric = await startFabric(registry, realCore());
  const portals = [{ ip: '127.0.0.1', port: fabric.port }];
  const rhel = { MaxRecvDataSegmentLength: '8192', InitialR2T: 'Yes', ImmediateData: 'Yes', FirstBurstLength: '65536' };
  for (const [name, lu] of [['file', fileLu], ['ram', ramLu]] as const) {
    for (const [params, parameters] of [['defaults', undefined], ['rhel', rhel]] as const) {
      const t = `iqn.2026-01.test:slabs-${name}-${params}`;
      registry.addTarget({ name: t, tpgs: [{ portals, ...(parameters ? { parameters } : {}), acls: [{ initiatorName: INITIATOR, luns: lunView([lu]) }] }] });
      targets.push(t);
    }
  }
});

after(async () => {
  await fabric.close();
  for (const c of closers) await c();
  await rm(dir, { recursive: true, force: true });
});

test('WRITE data read into reused slabs lands intact (fileio and RAM, agent defaults and RHEL TPG parameters)', async () => {
  let written = 0;
  for (const t of targets) {
    const o = `driver=iscsi,transport=tcp,portal=127.0.0.1:${fabric.port},target=${t},lun=0,initiator-name=${INITIATOR}`;
    // Whole image, in qemu's large writes (many of them in flight), then 4 KiB writes at a prime stride with a
    // pattern per write: a slab reused too early would put one write's bytes where another's belong.
    const src = join(dir, 'src.raw');
    const data = randomBytes(SIZE);
    await writeFile(src, data);
    const w = await run('qemu-img', ['convert', '-n', '-W', '-m', '16', '-f', 'raw', '--target-image-opts', src, o], {}, 120000);
    assert.equal(w.code, 0, w.stderr);
    written += SIZE;
    const cmds: string[] = [];
    const expect = Buffer.from(data);
    for (let i = 0; i < 512; i++) {
      const off = ((i * 1543) % (SIZE / 4096)) * 4096;
      const p = (i % 250) + 1;
      cmds.push('-c', `aio_write -P ${p} ${off} 4k`);
      expect.fill(p, off, off + 4096);
    }
    cmds.push('-c', 'aio_flush');
    const q = await run('qemu-io', [...cmds, '--image-opts', o], {}, 120000);
    assert.equal(q.code, 0, q.stderr + q.stdout);
    assert.doesNotMatch(q.stdout + q.stderr, /error|failed/i);
    written += 512 * 4096;
    const back = join(dir, 'back.raw');
    const r = await run('qemu-img', ['convert', '--image-opts', o, '-O', 'raw', back], {}, 120000);
    assert.equal(r.code, 0, r.stderr);
    assert.ok((await readFile(back)).equals(expect), `${t}: data read back differs`);
  }
  console.log(`# ${(written / 2 ** 20).toFixed(0)} MiB written and verified on ${targets.length} targets`);
});

test('steady writes reuse a handful of slabs instead of allocating one per 256 KiB received', async () => {
  for (const t of targets) {
    const before = { allocated: recvSlabs.allocated, reused: recvSlabs.reused };
    const o = `driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=127.0.0.1:${fabric.port},file.target=${t},file.lun=0,file.initiator-name=${INITIATOR}`;
    const b = await run('qemu-img', ['bench', '-w', '-t', 'none', '-d', '4', '-s', '65536', '-c', '1024', '--image-opts', o], {}, 120000);
    assert.equal(b.code, 0, b.stderr);
    const allocated = recvSlabs.allocated - before.allocated;
    const reused = recvSlabs.reused - before.reused;
    console.log(`# ${t}: 64 MiB of 64 KiB writes at QD4: ${allocated} slabs allocated, ${reused} reused`);
    // 64 MiB is 256 slabs' worth; at most ~256 KiB is in flight, so nearly every slab is a reused one.
    assert.ok(allocated <= 32 && reused >= 200, `${t}: ${allocated} slabs allocated, ${reused} reused`);
  }
});
