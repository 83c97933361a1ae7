// Backstore-only microbenchmark of fileio reads and writes (issue 15): CPU per I/O with the addon (reads:
// page-cache fast path; writes: batched pwritev jobs) and without it (one threadpool job per I/O), no
// network or SCSI in the way. `node dist/scripts/bench/fileio-micro.js [size] [count] [depth] [read|write]`.
import { mkdtemp, rm } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore } from '../../agent/backstores/file-store.js';
import { fillFile } from './target.js';

const FILE_SIZE = 256 << 20;

async function pass(path: string, fast: boolean, size: number, count: number, depth: number, write: boolean): Promise<{ cpuUs: number; wallUs: number }> {
  const handle = await open(path, write ? 'r+' : 'r');
  const store = new FileStore({ plugin: 'fileio', name: 'micro', path, handle, size: FILE_SIZE, writeBack: true, readOnly: !write, ...(fast ? {} : { fastIo: null }) });
  const data = Buffer.alloc(size, 0x5a);
  const blocks = FILE_SIZE / size;
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % blocks;
  let issued = 0;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const worker = async () => {
    while (issued < count) {
      issued++;
      if (write) await store.write(next() * size, [data]);
      else await store.read(next() * size, size);
    }
  };
  await Promise.all(Array.from({ length: depth }, worker));
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const st = store.stats() as { cached_reads: number; write_batches: number };
  if (fast && (write ? st.write_batches : st.cached_reads) === 0) throw new Error('addon path never taken (addon not built?)');
  await store.close();
  return { cpuUs: c.user + c.system, wallUs };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const write = args.includes('write');
  const [size = 4096, count = 200_000, depth = 32] = args.filter((a) => a !== 'write' && a !== 'read').map(Number);
  const dir = await mkdtemp(join(tmpdir(), 'outpost-micro-'));
  try {
    const path = join(dir, 'f.img');
    await fillFile(path, FILE_SIZE);
    for (const fast of [true, false, true, false]) {
      await pass(path, fast, size, Math.min(count, 20_000), depth, write); // warm-up (JIT, page cache)
      const r = await pass(path, fast, size, count, depth, write);
      const name = fast ? (write ? 'pwritev batch ' : 'preadv2-nowait') : 'threadpool    ';
      const op = write ? 'write' : 'read';
      console.log(`${name} ${size} B x ${count} QD${depth}: ${(r.cpuUs / count).toFixed(2)} CPU µs/${op}, ${(r.wallUs / count).toFixed(2)} wall µs/${op}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
