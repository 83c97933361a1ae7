// Issue 6/17 bench rows: object LUNs (s3rver on loopback) in one agent next to a fileio LUN — cached 4 KiB random and
// 128 KiB sequential reads and 4 KiB random writes (ratio object/fileio, same run) with the write amplification and
// PUTs/GETs per GiB of the random writes, sustained sequential writes with the flusher running, and sequential
// reads of a range the cache does not hold (from the LUNs' stats via `outpost … info`).
// Standalone: node dist/scripts/bench/object.js [--quick] [--reads-only] (only the cached-read rows, with CPU per GiB)
// [--cpu-prof DIR] (a V8 CPU profile of the agent).
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/net.js';
import { startS3rver } from '../../test/helpers/s3rver.js';
import { run, sleep } from './proc.js';
import { lastLines } from './parse.js';
import { cpuPerGiB, runOnce, warmUp, type RunContext, type Sample } from './runner.js';
import { fillFile, type Endpoint, type TargetUnderTest } from './target.js';
import { WORKLOADS } from './workloads.js';
import { runStandalone, type SectionOptions } from './standalone.js';
import { startSectionAgent } from './section-agent.js';
import { fmt, median } from './report.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const IQN = 'iqn.2024-01.dev.outpost.bench:object';
const READ_SIZE = 256 * MiB;
const WRITE_SIZE = GiB;
const WRITE_CACHE = 128 * MiB;


type Stats = Map<string, number | string>;

/** One LUN of the bench agent as a TargetUnderTest (endpoint('file') is that LUN), for runner.runOnce. */
function lunTarget(name: string, portal: string, lun: number, pid: number | undefined): TargetUnderTest {
  return { name, unavailable: undefined, pid, blockSize: 512, notes: [], endpoint: (): Endpoint => ({ portal, iqn: IQN, lun }) };
}

function qemuOpts(portal: string, lun: number, initiator: string): string {
  return `driver=iscsi,transport=tcp,portal=${portal},target=${IQN},lun=${lun},initiator-name=${initiator}`;
}

/** Runs the object rows; returns a markdown section. Cleans up its agent, s3rver and files itself. */
export async function objectBench(o: SectionOptions): Promise<string> {
  const readsOnly = o.argv?.includes('--reads-only') ?? false;
  const profAt = o.argv?.indexOf('--cpu-prof') ?? -1;
  const cpuProfDir = profAt >= 0 ? o.argv![profAt + 1] : undefined;
  const dir = await mkdtemp(join(o.workDir, 'object-'));
  const s3 = await startS3rver('outpost-bench');
  const stateDir = join(dir, 'state');
  await mkdir(stateDir, { recursive: true });
  const port = await freePort();
  const portal = `127.0.0.1:${port}`;
  const filePath = join(dir, 'fileio.img');
  await fillFile(filePath, READ_SIZE);
  const obj = (name: string, size: number, cache: number, wwn: string) => ({
    plugin: 'object', name, size, bucket: s3.bucket, prefix: `bench/${name}`, endpoint: s3.endpoint, force_path_style: true,
    cache_size: cache, write_back: true, wwn, attributes: { block_size: 512 },
  });
  const env = { ...process.env, ...s3.env, OUTPOST_LOG_LEVEL: process.env.OUTPOST_LOG_LEVEL ?? 'warn' };
  const agent = await startSectionAgent({
    repoRoot: o.repoRoot, dir, stateDir, iqn: IQN, port, env, cpuProfDir,
    storageObjects: [
      { plugin: 'fileio', name: 'ob_file', dev: filePath, size: READ_SIZE, write_back: true, wwn: '5e1f0c2a-0b3e-4d6a-9f1e-0000000000a1', attributes: { block_size: 512 } },
      obj('ob_read', READ_SIZE, READ_SIZE + 64 * MiB, '5e1f0c2a-0b3e-4d6a-9f1e-0000000000a2'),
      obj('ob_write', WRITE_SIZE, WRITE_CACHE, '5e1f0c2a-0b3e-4d6a-9f1e-0000000000a3'),
    ],
    luns: ['/backstores/fileio/ob_file', '/backstores/object/ob_read', '/backstores/object/ob_write'],
    after: async () => {
      await s3.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  });
  const { child, fail, stop } = agent;

  const stats = async (name: string): Promise<Stats> => {
    const r = await run(process.execPath, [join(o.repoRoot, 'bin/outpost.js'), '--state-dir', stateDir, `/backstores/object/${name}`, 'info'], { timeoutMs: 20_000, env });
    if (r.code !== 0) return fail(`outpost info ${name}: ${r.stdout}${r.stderr}`);
    const m: Stats = new Map();
    for (const l of r.stdout.split('\n').slice(r.stdout.split('\n').indexOf('live:') + 1)) {
      const i = l.indexOf(': ');
      if (!l.startsWith('  ') || i < 0) continue;
      const v = l.slice(i + 2);
      const n = /\((\d+)\)$/.exec(v) ?? /^([\d.]+)( ms|%)?$/.exec(v);
      m.set(l.slice(2, i), n ? Number(n[1]) * (v.endsWith(' s') ? 1000 : 1) : v);
    }
    return m;
  };
  const num = (s: Stats, k: string): number => {
    const v = s.get(k);
    if (typeof v !== 'number') throw new Error(`stat ${k} missing or not a number: ${String(v)}`);
    return v;
  };
  const drain = async (name: string, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (num(await stats(name), 'dirty bytes') > 0 || num(await stats(name), 'uploads in flight') > 0) {
      if (Date.now() > deadline) await fail(`${name} still dirty after ${timeoutMs} ms`);
      await sleep(200);
    }
  };

  try {
    await agent.waitForLun(2);

    let tWrite = NaN, tDrain = NaN, puts = NaN, uploaded = NaN, tCold = NaN, coldGets = NaN;
    const coldBytes = 512 * MiB;
    if (!readsOnly) {
      // Sustained sequential write: 1 GiB through a 128 MiB cache, so most of it waits on the flusher (backpressure).
      console.error(`[object] sequential write of ${WRITE_SIZE / GiB} GiB, 128 KiB QD16, through a ${WRITE_CACHE / MiB} MiB cache…`);
      const w0 = await stats('ob_write');
      const t0 = performance.now();
      const wr = await run('qemu-img', ['bench', '-w', '-t', 'none', '-c', String(WRITE_SIZE / (128 * 1024)), '-d', '16', '-s', '128k', '--pattern=165',
        '--image-opts', qemuOpts(portal, 2, o.initiatorName)], { timeoutMs: 1_200_000 });
      tWrite = (performance.now() - t0) / 1000;
      if (wr.code !== 0) await fail(`qemu-img bench -w: ${lastLines(wr.stdout + wr.stderr)}`);
      await drain('ob_write', 600_000);
      tDrain = (performance.now() - t0) / 1000;
      const w1 = await stats('ob_write');
      puts = num(w1, 'PUT count') - num(w0, 'PUT count');
      uploaded = num(w1, 'bytes uploaded') - num(w0, 'bytes uploaded');
      console.error(`[object] write: ${fmt(WRITE_SIZE / MiB / tWrite)} MiB/s acknowledged, ${fmt(WRITE_SIZE / MiB / tDrain)} MiB/s until uploaded; ${puts} PUTs`);
    }

    // Cached reads: fill the read LUN (fits in its cache), let the flusher finish, then alternate fileio/object runs.
    // In 4 KiB writes, as fillFile fills the fileio LUN: the chunk files are then in base pages like the file
    // (filled in 128 KiB writes, they were in large folios, where each 4 KiB write costs ext4 a walk of the
    // folio's buffer heads: 5.4 µs of the writer thread's CPU per write against fileio's 3.2 — docs/benchmarks.md, "Page cache").
    const fill = await run('qemu-img', ['bench', '-w', '-t', 'none', '-c', String(READ_SIZE / 4096), '-d', '32', '-s', '4096', '--pattern=90',
      '--image-opts', qemuOpts(portal, 1, o.initiatorName)], { timeoutMs: 600_000 });
    if (fill.code !== 0) await fail(`qemu-img bench fill: ${lastLines(fill.stdout + fill.stderr)}`);
    await drain('ob_read', 300_000);
    if (!readsOnly) {
      // Reads of a range the write LUN's cache no longer holds (it keeps the last 128 MiB written): from the bucket.
      const c0 = await stats('ob_write');
      const tc = performance.now();
      const cold = await run('qemu-img', ['bench', '-t', 'none', '-c', String(coldBytes / (128 * 1024)), '-d', '16', '-s', '128k',
        '--image-opts', qemuOpts(portal, 2, o.initiatorName)], { timeoutMs: 600_000 });
      tCold = (performance.now() - tc) / 1000;
      if (cold.code !== 0) await fail(`qemu-img bench (cold read): ${lastLines(cold.stdout + cold.stderr)}`);
      const c1 = await stats('ob_write');
      coldGets = num(c1, 'GET count') - num(c0, 'GET count');
    }

    const r0 = await stats('ob_read');
    const pid = child.pid;
    const targets = [lunTarget('fileio', portal, 0, pid), lunTarget('object', portal, 1, pid)];
    const ctx: RunContext = { duration: o.duration, initiatorName: o.initiatorName, rates: new Map() };
    const rows: Array<{ label: string; unit: string; file: Sample[]; object: Sample[] }> = [];
    let randWritten = 0;
    let rw0: Stats | undefined;
    for (const id of readsOnly ? ['rr4k', 'sr128k'] : ['rr4k', 'sr128k', 'rw4k']) {
      // runOnce's calibration run (4000 requests of 4 KiB, once per target) writes too.
      if (id === 'rw4k') { rw0 = await stats('ob_read'); randWritten += 4000 * 4096; }
      const w = WORKLOADS.find((x) => x.id === id);
      if (!w) throw new Error(`workload ${id} not defined in scripts/bench/workloads.ts`);
      const samples: Record<string, Sample[]> = { fileio: [], object: [] };
      // Reads only: a discarded warm-up per LUN, as in the main rows (a write warm-up would add to the written bytes counted below).
      if (!w.write) for (const t of targets) await warmUp(w, t, ctx, Math.min(2, o.duration));
      for (let rep = 1; rep <= o.reps; rep++) {
        for (const t of targets) {
          // Each write run starts with the object LUN's flusher idle: the uploads of one run are not charged to the next.
          if (w.write) await drain('ob_read', 300_000);
          const s = await runOnce(w, t, ctx);
          samples[t.name]!.push(s);
          if (id === 'rw4k' && t.name === 'object') randWritten += s.bytes ?? 0;
          const cpu = cpuPerGiB(s);
          console.error(`[object ${id}] ${t.name} run ${rep}/${o.reps}: ${fmt(s.value, s.value < 10 ? 2 : 0)} ${w.unit}${cpu !== undefined ? `, ${cpu.toFixed(2)} agent CPU s/GiB` : ''}`);
        }
      }
      rows.push({ label: `cached ${w.label.replace(/^file: /, '')}`, unit: w.unit, file: samples.fileio!, object: samples.object! });
    }
    const r1 = rw0 ?? (await stats('ob_read'));
    const getsDuringReads = num(r1, 'GET count') - num(r0, 'GET count');
    let randUp = NaN, randPuts = NaN, randGets = NaN;
    if (rw0) {
      await drain('ob_read', 300_000);
      await sleep(3000); // the last manifest and compaction round
      const rw1 = await stats('ob_read');
      randUp = num(rw1, 'bytes uploaded') - num(rw0, 'bytes uploaded');
      randPuts = num(rw1, 'PUT count') - num(rw0, 'PUT count');
      randGets = num(rw1, 'GET count') - num(rw0, 'GET count');
    }

    const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b ? (a / b).toFixed(2) : 'n/a');
    // Median (lowest–highest) of the runs' values or agent CPU s/GiB; ratios pair run i of one LUN with run i of the other.
    const value = (xs: Sample[]) => median(xs.map((s) => s.value));
    const cpu = (xs: Sample[]) => median(xs.map(cpuPerGiB).filter((x): x is number => x !== undefined));
    const spread = (xs: (number | undefined)[], d: number) => {
      const v = xs.filter((x): x is number => x !== undefined);
      return v.length > 1 ? ` (${fmt(Math.min(...v), d)}–${fmt(Math.max(...v), d)})` : '';
    };
    const cell = (xs: Sample[], d = 0) => `${fmt(value(xs), d)}${spread(xs.map((s) => s.value), d)}`;
    const cpuCell = (xs: Sample[]) => `${fmt(cpu(xs), 2)}${spread(xs.map(cpuPerGiB), 2)}`;
    const paired = (a: (number | undefined)[], b: (number | undefined)[]) => spread(a.map((x, i) => (x !== undefined && b[i] ? x / b[i]! : undefined)), 2);
    const writeRow = (line: string) => (readsOnly ? [] : [line]);
    const lines = [
      '',
      '### Object-storage LUN (issue 6)',
      '',
      `One agent serving a fileio LUN (${READ_SIZE / MiB} MiB file) and object LUNs on s3rver (loopback, its own process); ${o.reps} runs each, median, alternating fileio/object.`,
      '',
      '| workload | fileio | object | object/fileio | agent CPU s/GiB fileio | object | CPU object/fileio |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map((r) => `| ${r.label} | ${cell(r.file)} ${r.unit} | ${cell(r.object)} ${r.unit} | ${ratio(value(r.object), value(r.file))}${paired(r.object.map((s) => s.value), r.file.map((s) => s.value))} | ` +
        `${cpuCell(r.file)} | ${cpuCell(r.object)} | ${ratio(cpu(r.object), cpu(r.file))}${paired(r.object.map(cpuPerGiB), r.file.map(cpuPerGiB))} |`),
      ...[`| sequential write 128 KiB QD16, ${WRITE_SIZE / GiB} GiB through a ${WRITE_CACHE / MiB} MiB cache (flusher running): acknowledged | | ${fmt(WRITE_SIZE / MiB / tWrite)} MiB/s | |`,
      `| same, until every byte is uploaded and in a manifest | | ${fmt(WRITE_SIZE / MiB / tDrain)} MiB/s | |`,
      `| PUTs per GiB written (chunks + manifests) | | ${fmt((puts * GiB) / WRITE_SIZE)} | |`,
      `| 4 KiB random writes (cached LUN): uploaded ÷ written, after the flusher settles | | ${randWritten ? (randUp / randWritten).toFixed(2) : 'n/a'} | |`,
      `| same: PUTs / GETs per GiB written | | ${randWritten ? `${fmt((randPuts * GiB) / randWritten)} / ${fmt((randGets * GiB) / randWritten)}` : 'n/a'} | |`,
      `| sequential read 128 KiB QD16 of ${coldBytes / MiB} MiB the cache does not hold (from the bucket) | | ${fmt(coldBytes / MiB / tCold)} MiB/s | |`,
      `| same: GETs per GiB read | | ${fmt((coldGets * GiB) / coldBytes)} | |`].flatMap(writeRow),
      '',
      `Read LUN: ${READ_SIZE / MiB} MiB with a ${(READ_SIZE + 64 * MiB) / MiB} MiB cache, filled and uploaded before the reads; hit ratio ${String(r1.get('hit ratio'))}%, ${getsDuringReads} GETs during the read runs. ` +
        (readsOnly ? '(--reads-only: no write rows.) ' : `Write LUN: ${fmt(uploaded / MiB)} MiB uploaded in ${puts} PUTs (4 MiB chunks). `) +
        `CPU s/GiB is the agent process's (one process serves both LUNs; the runs do not overlap). Load average at the end ${loadavg().map((x) => x.toFixed(2)).join('/')}.`,
      '',
    ];
    return lines.join('\n');
  } finally {
    await stop();
  }
}

runStandalone(import.meta.url, 'object', objectBench);
