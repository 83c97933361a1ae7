// JS heap bytes allocated per 4 KiB READ through the whole agent stack (iSCSI fabric, SCSI core, fileio),
// a figure that does not depend on how busy the machine is (issue 15): heap growth between GCs, summed
// over the run with v8.GCProfiler. Run: node dist/scripts/bench/alloc-per-read.js [seconds] [ioBytes]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GCProfiler, getHeapStatistics } from 'node:v8';
import { openBackstore } from '../../agent/backstores/index.js';
import { createLogicalUnit } from '../../agent/scsi/logical-unit.js';
import { TestRegistry, lunView } from '../../test/helpers/iscsi-registry.js';
import { startFabric, realCore, run } from '../../test/helpers/iscsi-fixture.js';
import { fillFile } from './target.js';

const INITIATOR = 'iqn.2026-01.bench:alloc-host';
const TARGET = 'iqn.2026-01.bench:alloc';

/** Bytes allocated on the JS heap while `fn` runs: growth up to each GC, plus growth after the last. */
async function allocatedDuring(fn: () => Promise<void>): Promise<number> {
  const prof = new GCProfiler();
  const start = getHeapStatistics().used_heap_size;
  prof.start();
  await fn();
  const end = getHeapStatistics().used_heap_size;
  const stats = prof.stop().statistics as { beforeGC: { heapStatistics: { usedHeapSize: number } }; afterGC: { heapStatistics: { usedHeapSize: number } } }[];
  let total = 0;
  let base = start;
  for (const g of stats) {
    total += g.beforeGC.heapStatistics.usedHeapSize - base;
    base = g.afterGC.heapStatistics.usedHeapSize;
  }
  return total + end - base;
}

async function main(): Promise<void> {
  const [seconds = 2, ioBytes = 4096] = process.argv.slice(2).map(Number);
  const dir = await mkdtemp(join(tmpdir(), 'outpost-alloc-'));
  const path = join(dir, 'lun.img');
  await fillFile(path, 64 << 20);
  const store = await openBackstore({ plugin: 'fileio', name: 'alloc', dev: path, writeBack: true }, { stateDir: dir });
  const lu = await createLogicalUnit({ name: '/backstores/fileio/alloc', wwn: '6a1f0c2e-0000-4000-8000-0000000a110c', backstore: store, attributes: {}, aluaGroups: [], stateDir: dir });
  const registry = new TestRegistry();
  const fabric = await startFabric(registry, realCore());
  registry.addTarget({ name: TARGET, tpgs: [{ portals: [{ ip: '127.0.0.1', port: fabric.port }], acls: [{ initiatorName: INITIATOR, luns: lunView([lu]) }] }] });
  const url = `iscsi://127.0.0.1:${fabric.port}/${TARGET}/0`;
  const perf = (t: number) => run('iscsi-perf', ['-i', INITIATOR, '-m', '32', '-b', String(ioBytes / 512), '-t', String(t), '-r', url], {}, (t + 20) * 1000);
  try {
    await perf(1); // warm-up: JIT, page cache
    const reads = () => { const s = store.stats!() as { cached_reads: number; threadpool_reads: number }; return s.cached_reads + s.threadpool_reads; };
    for (let i = 0; i < 3; i++) {
      const r0 = reads();
      let code = 0;
      const bytes = await allocatedDuring(async () => {
        code = (await perf(seconds)).code;
      });
      if (code !== 0) throw new Error(`iscsi-perf exited with ${code}`);
      const n = reads() - r0;
      console.log(`${ioBytes} B random reads QD32: ${n} commands, ${(bytes / n).toFixed(0)} JS heap bytes allocated per command`);
    }
  } finally {
    await fabric.close();
    await lu.close();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
