// JS heap bytes allocated per 4 KiB READ (or WRITE) through the whole agent stack (iSCSI fabric, SCSI core,
// fileio), a figure that does not depend on how busy the machine is (issue 15): heap growth between GCs,
// summed over the run with v8.GCProfiler; also this process's CPU per command (the target runs in it).
// Run: node dist/scripts/bench/alloc-per-read.js [seconds] [ioBytes] [write]
// (writes: qemu-img bench -w at QD32, striding a prime number of blocks as the main bench does).
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
  const args = process.argv.slice(2);
  const write = args.includes('write');
  const [seconds = 2, ioBytes = 4096] = args.filter((a) => a !== 'write').map(Number);
  const dir = await mkdtemp(join(tmpdir(), 'outpost-alloc-'));
  const path = join(dir, 'lun.img');
  await fillFile(path, 64 << 20);
  const store = await openBackstore({ plugin: 'fileio', name: 'alloc', dev: path, writeBack: true }, { stateDir: dir });
  const lu = await createLogicalUnit({ name: '/backstores/fileio/alloc', wwn: '6a1f0c2e-0000-4000-8000-0000000a110c', backstore: store, attributes: {}, aluaGroups: [], stateDir: dir });
  const registry = new TestRegistry();
  const fabric = await startFabric(registry, realCore());
  registry.addTarget({ name: TARGET, tpgs: [{ portals: [{ ip: '127.0.0.1', port: fabric.port }], acls: [{ initiatorName: INITIATOR, luns: lunView([lu]) }] }] });
  const url = `iscsi://127.0.0.1:${fabric.port}/${TARGET}/0`;
  const opts = `driver=raw,file.driver=iscsi,file.transport=tcp,file.portal=127.0.0.1:${fabric.port},file.target=${TARGET},file.lun=0,file.initiator-name=${INITIATOR}`;
  // About 3,000 writes/s here: sized so a run lasts roughly `t` seconds.
  const qemu = (t: number) => run('qemu-img', ['bench', '-w', '-t', 'none', '-c', String(Math.round(t * 3000)), '-d', '32', '-s', String(ioBytes),
    '-S', String(ioBytes * 25013), '--image-opts', opts], {}, (t * 10 + 30) * 1000);
  const perf = (t: number) => write ? qemu(t) : run('iscsi-perf', ['-i', INITIATOR, '-m', '32', '-b', String(ioBytes / 512), '-t', String(t), '-r', url], {}, (t + 20) * 1000);
  try {
    await perf(1); // warm-up: JIT, page cache
    const reads = () => { const s = store.stats!() as { cached_reads: number; threadpool_reads: number }; return s.cached_reads + s.threadpool_reads; };
    for (let i = 0; i < 3; i++) {
      const r0 = reads();
      let code = 0;
      const c0 = process.cpuUsage();
      const bytes = await allocatedDuring(async () => {
        code = (await perf(seconds)).code;
      });
      const cpu = process.cpuUsage(c0);
      if (code !== 0) throw new Error(`iscsi-perf exited with ${code}`);
      // qemu-img bench sends exactly its count (and fails otherwise, caught above).
      const n = write ? Math.round(seconds * 3000) : reads() - r0;
      console.log(`${ioBytes} B random ${write ? 'writes' : 'reads'} QD32: ${n} commands, ${(bytes / n).toFixed(0)} JS heap bytes allocated per command, ` +
        `${((cpu.user + cpu.system) / n).toFixed(1)} CPU µs per command (target process, user ${(cpu.user / n).toFixed(1)})`);
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
