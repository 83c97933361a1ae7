// Backstore-only microbenchmark of fileio reads (issue 15): CPU per read with the page-cache fast path and
// without it, no network or SCSI in the way. `node dist/scripts/bench/fileio-micro.js [size] [count] [depth]`.
import { mkdtemp, rm } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '../../agent/backstores/file-store.js';
import { fillFile } from './target.js';

const FILE_SIZE = 256 << 20;

async function pass(path: string, fast: boolean, size: number, count: number, depth: number): Promise<{ cpuUs: number; wallUs: number }> {
  const handle = await open(path, 'r');
  const store = new FileStore({ plugin: 'fileio', name: 'micro', path, handle, size: FILE_SIZE, writeBack: true, readOnly: true, ...(fast ? {} : { fastIo: null }) });
  const blocks = FILE_SIZE / size;
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % blocks;
  let issued = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (issued < count) {
      issued++;
      await store.read(next() * size, size);
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
  const c = process.cpuUsage(c0);
  if (fast && (store.stats() as { cached_reads: number }).cached_reads === 0) throw new Error('fast path never hit (addon not built?)');
  await store.close();
  return { cpuUs: c.user + c.system, wallUs };
}

async function main(): Promise<void> {
  const [size = 4096, count = 200_000, depth = 32] = process.argv.slice(2).map(Number);
  const dir = await mkdtemp(join(tmpdir(), 'outpost-micro-'));
  try {
    const path = join(dir, 'f.img');
    await fillFile(path, FILE_SIZE);
    for (const fast of [true, false, true, false]) {
      await pass(path, fast, size, Math.min(count, 20_000), depth); // warm-up (JIT, page cache)
      const r = await pass(path, fast, size, count, depth);
      console.log(`${fast ? 'preadv2-nowait' : 'threadpool    '} ${size} B x ${count} QD${depth}: ${(r.cpuUs / count).toFixed(2)} CPU µs/read, ${(r.wallUs / count).toFixed(2)} wall µs/read`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
