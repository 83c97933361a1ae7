// npm run bench: the Outpost agent side by side with tgt on identical LUNs, alternating runs, median of each (issue 8).
import { Command, Option } from 'commander';
import { mkdtemp, rm, readFile, writeFile, truncate, open } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir, cpus, release, loadavg } from 'node:os';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, onCleanup, runCleanups, installSignalTeardown, memoryKiB } from './bench/proc.js';
import { parseCpuModel } from './bench/parse.js';
import { startTgt } from './bench/tgt.js';
import { startAgent } from './bench/agent.js';
import { GiB, fillFile, type TargetUnderTest } from './bench/target.js';
import { WORKLOADS, selectWorkloads, type Workload } from './bench/workloads.js';
import { runOnce, warmUp, cpuPerGiB, type RunContext, type Sample } from './bench/runner.js';
import { loopbackCeiling, memoryCheck } from './bench/extras.js';
import { newestProfile, profileTable } from './bench/cpuprofile.js';
import { renderMarkdown, spliceReport, spreadWarnings, median, fmt, type Cell, type Report, type RowResult } from './bench/report.js';
import { objectBench } from './bench/object.js';
import { replicationBench } from './bench/replication.js';
import { relayBench } from './bench/relay.js';
import { restoreBench } from './bench/restore.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Opts {
  quick?: boolean;
  duration?: number;
  reps?: number;
  warmup?: number;
  only?: string;
  targets: string;
  memory: boolean;
  object: boolean;
  replication: boolean;
  relay: boolean;
  restore: boolean;
  ceiling: boolean;
  sessions: number;
  markdown?: string;
  cpuProf?: string;
  agentEnv: string[];
  list?: boolean;
}

function parseArgs(argv: string[]): Opts {
  const num = (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got "${v}"`);
    return n;
  };
  const p = new Command('bench')
    .description('Benchmark the Outpost agent against tgt on loopback (iscsi-perf, qemu-img bench, iperf3)')
    .option('--quick', 'short runs: 2 repetitions of 2 s, 3 s memory check')
    .addOption(new Option('--duration <s>', 'seconds per measured run (default 4; 2 with --quick)').argParser(num))
    .addOption(new Option('--reps <n>', 'runs per workload and target; the median is reported (default 3; 2 with --quick)').argParser(num))
    .addOption(new Option('--warmup <s>', 'seconds of discarded warm-up per row and target before its measured runs (default 2; 1 with --quick; 0: none)').argParser((v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`expected seconds >= 0, got "${v}"`);
      return n;
    }))
    .option('--only <ids>', 'comma-separated workload ids, prefixes ending in *, or groups main,digest,ram')
    .option('--targets <names>', 'which targets to run: agent,tgt', 'agent,tgt')
    .option('--no-memory', 'skip the 64-session memory check')
    .option('--no-object', 'skip the object-storage LUN rows (issue 6; scripts/bench/object.ts)')
    .option('--no-replication', 'skip the replication-lag row (issue 12; scripts/bench/replication.ts)')
    .option('--no-relay', 'skip the relay/direct rows (issue 16; scripts/bench/relay.ts)')
    .option('--no-restore', 'skip the restore / prefetch rows (issue 12; scripts/bench/restore.ts)')
    .option('--no-ceiling', 'skip the iperf3 loopback ceiling')
    .addOption(new Option('--sessions <n>', 'sessions in the memory check').default(64).argParser(num))
    .option('--markdown <file>', 'also write the report to FILE (replaces the generated section of docs/benchmarks.md)')
    .option('--cpu-prof <dir>', 'run the agent under node --cpu-prof, writing the profile into DIR at exit')
    .option('--agent-env <K=V>', 'extra environment for the agent (repeatable), e.g. UV_USE_IO_URING=1', (v: string, acc: string[]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*=/.test(v)) throw new Error(`--agent-env expects K=V, got "${v}"`);
      return [...acc, v];
    }, [] as string[])
    .option('--list', 'list workload ids and exit')
    .exitOverride();
  p.parse(argv, { from: 'user' });
  return p.opts<Opts>();
}

async function machine(): Promise<Report['machine']> {
  const tools: string[] = [];
  const first = async (cmd: string, args: string[], re: RegExp, name: string) => {
    const r = await run(cmd, args, { timeoutMs: 5000 });
    const m = re.exec(r.stdout + r.stderr);
    if (m) tools.push(`${name} ${m[1]}`);
  };
  await first('/usr/sbin/tgtd', ['-V'], /([\d.]+)/, 'tgt');
  await first('qemu-img', ['--version'], /version (\S+)/, 'qemu-img');
  await first('dpkg-query', ['-W', '-f', '${Version}', 'libiscsi-bin'], /(\S+)/, 'libiscsi');
  await first('iperf3', ['--version'], /iperf (\S+)/, 'iperf3');
  return {
    cpu: parseCpuModel(await readFile('/proc/cpuinfo', 'utf8').catch(() => '')),
    cores: cpus().length,
    kernel: release(),
    node: process.version,
    tools,
  };
}

function summarize(perRep: (Sample | undefined)[], failures: string[], na: string | undefined): Cell {
  if (na) return { runs: 0, failures: [], na };
  const samples = perRep.filter((s): s is Sample => s !== undefined);
  const cpu = samples.map(cpuPerGiB).filter((x): x is number => x !== undefined);
  const values = samples.map((s) => s.value);
  const spread = values.length > 1 ? { min: Math.min(...values), max: Math.max(...values) } : {};
  const cpuSpread = cpu.length > 1 ? { cpuMin: Math.min(...cpu), cpuMax: Math.max(...cpu) } : {};
  const perRun = perRep.map((s) => s?.value);
  const cpuPerRun = perRep.map((s) => (s ? cpuPerGiB(s) : undefined));
  return { value: median(values), ...spread, cpuPerGiB: median(cpu), ...cpuSpread, runs: samples.length + failures.length, failures, perRun, cpuPerRun };
}

async function measure(w: Workload, targets: TargetUnderTest[], reps: number, ctx: RunContext, warmup: number): Promise<RowResult> {
  // Indexed by repetition (undefined: that run failed), so each agent run pairs with the tgt run after it.
  const samples = new Map<string, (Sample | undefined)[]>(targets.map((t) => [t.name, []]));
  const failures = new Map<string, string[]>(targets.map((t) => [t.name, []]));
  const notes = new Set<string>();
  console.error(`[${w.id}] load average ${loadavg().map((x) => x.toFixed(2)).join('/')}${warmup > 0 ? `; ${warmup} s warm-up per target (discarded)` : ''}`);
  for (const t of targets) {
    if (t.unavailable || warmup <= 0) continue;
    await warmUp(w, t, ctx, warmup).catch((err: Error) => console.error(`[${w.id}] ${t.name} warm-up failed: ${err.message}`));
  }
  for (let rep = 1; rep <= reps; rep++) {
    // Alternate agent, tgt, agent, tgt… so noise on the shared machine lands on both alike.
    for (const t of targets) {
      if (t.unavailable) continue;
      try {
        const s = await runOnce(w, t, ctx);
        samples.get(t.name)![rep - 1] = s;
        if (w.digest) notes.add(`${t.name}: HeaderDigest=${s.negotiated.HeaderDigest}, DataDigest=${s.negotiated.DataDigest ?? '?'}`);
        const cpu = cpuPerGiB(s);
        console.error(`[${w.id}] ${t.name} run ${rep}/${reps}: ${fmt(s.value, s.value < 10 ? 2 : 0)} ${w.unit}${cpu !== undefined ? `, ${cpu.toFixed(2)} CPU s/GiB` : ''}`);
      } catch (err) {
        const msg = (err as Error).message;
        failures.get(t.name)!.push(msg);
        samples.get(t.name)![rep - 1] = undefined;
        console.error(`[${w.id}] ${t.name} run ${rep}/${reps}: FAILED ${msg}`);
        // A target that refuses the LUN kind (string endpoint) will refuse every repetition.
        if (typeof t.endpoint(w.lun, w.digest) === 'string') break;
      }
    }
  }
  const cell = (name: string): Cell => {
    const t = targets.find((x) => x.name === name);
    if (!t) return { runs: 0, failures: [], na: 'not selected (--targets)' };
    const e = t.endpoint(w.lun, w.digest);
    return summarize(samples.get(name)!, failures.get(name)!, t.unavailable ?? (typeof e === 'string' ? e : undefined));
  };
  let note = notes.size ? [...notes].join('; ') : undefined;
  if (w.digest) note = `${note ? note + '; ' : ''}libiscsi (iscsi-perf, qemu) offers DataDigest=None only, so data digests cannot be measured`;
  const row: RowResult = { workload: w, agent: cell('agent'), tgt: cell('tgt'), note };
  for (const line of spreadWarnings(row)) console.error(`[${w.id}] UNSTEADY: ${line}`);
  return row;
}

async function main(): Promise<void> {
  let opts: Opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    // Commander has already printed its own errors (and --help); anything else is ours to print.
    if (code === undefined) console.error(`bench: ${(err as Error).message}`);
    process.exit(code ?? 2);
  }
  if (opts.list) {
    for (const w of WORKLOADS) console.log(`${w.id.padEnd(16)} ${w.label}`);
    return;
  }
  const workloads = selectWorkloads(opts.only);
  const reps = opts.reps ?? (opts.quick ? 2 : 3);
  const duration = opts.duration ?? (opts.quick ? 2 : 4);
  const warmup = opts.warmup ?? (opts.quick ? 1 : 2);
  const wanted = opts.targets.split(',').map((s) => s.trim());
  for (const n of wanted) if (n !== 'agent' && n !== 'tgt') throw new Error(`unknown target "${n}" (agent, tgt)`);

  installSignalTeardown();
  const workDir = await mkdtemp(join(tmpdir(), 'outpost-bench-'));
  const shmDir = existsSync('/dev/shm') ? await mkdtemp('/dev/shm/outpost-bench-') : workDir;
  onCleanup(async () => {
    await rm(workDir, { recursive: true, force: true });
    if (shmDir !== workDir) await rm(shmDir, { recursive: true, force: true });
  });

  const info = await machine();
  const load: string[] = [];
  const sampleLoad = (what: string, all = false) => {
    const [a, b, c] = loadavg().map((x) => x.toFixed(2));
    load.push(all ? `${what} ${a}/${b}/${c}` : `${what} ${a}`);
  };
  sampleLoad('start', true);
  console.error(`bench: ${info.cpu}, ${info.cores} cores, Linux ${info.kernel}; load average ${load[0]!.slice(6)}`);
  const targets: TargetUnderTest[] = [];
  console.error(`bench: work dir ${workDir}; preparing two 1 GiB LUN files…`);
  if (wanted.includes('agent')) {
    const filePath = join(workDir, 'agent-lun.img');
    await fillFile(filePath, GiB);
    const env = Object.fromEntries(opts.agentEnv.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
    const a = await startAgent({ repoRoot, workDir, filePath, cpuProfDir: opts.cpuProf, env });
    console.error(`bench: agent ${a.unavailable ? `unavailable: ${a.unavailable}` : `up (pid ${a.pid})`}`);
    targets.push(a);
  }
  if (wanted.includes('tgt')) {
    const filePath = join(workDir, 'tgt-lun.img');
    await fillFile(filePath, GiB);
    const ramPath = join(shmDir, 'tgt-ram.img');
    await (await open(ramPath, 'w')).close();
    await truncate(ramPath, GiB);
    const t = await startTgt({ workDir, filePath, ramPath });
    console.error(`bench: tgt ${t.unavailable ? `unavailable: ${t.unavailable}` : `up (pid ${t.pid})`}`);
    targets.push(t);
  }

  const ctx: RunContext = { duration, initiatorName: `iqn.2024-01.dev.outpost.bench:init-${process.pid}`, rates: new Map() };
  const rows: RowResult[] = [];
  const memory: Report['memory'] = [];
  // The memory check runs before the ramdisk rows, whose written pages would otherwise count as agent RSS.
  const [before, after] = [workloads.filter((w) => w.lun !== 'ram'), workloads.filter((w) => w.lun === 'ram')];
  const measureRow = async (w: Workload) => {
    rows.push(await measure(w, targets, reps, ctx, warmup));
    sampleLoad(w.id);
  };
  for (const w of before) await measureRow(w);
  if (opts.memory) {
    for (const t of targets) {
      console.error(`[memory] ${t.name}: ${opts.sessions} sessions at QD32…`);
      memory.push(await memoryCheck(t, opts.sessions, opts.quick ? 3 : 5));
    }
  }
  for (const w of after) await measureRow(w);
  sampleLoad('end', true);

  let ceilingMiBs: number | undefined;
  let ceilingNa: string | undefined;
  if (opts.ceiling) {
    try {
      ceilingMiBs = await loopbackCeiling(Math.max(2, duration));
      console.error(`[iperf3] loopback: ${fmt(ceilingMiBs)} MiB/s`);
    } catch (err) {
      ceilingNa = (err as Error).message;
    }
  }
  const peakRss: Report['peakRss'] = [];
  for (const t of targets) {
    if (t.unavailable || !t.pid) continue;
    peakRss.push({ target: t.name, hwmMiB: await memoryKiB(t.pid).then((m) => m.hwm / 1024, () => undefined) });
  }
  // An unavailable target's reason already appears as a footnote of its n/a cells.
  const notes = targets.flatMap((t) => (t.unavailable ? [] : t.notes));
  notes.push('IOPS = requests per second; MiB/s = 2^20 bytes per second. CPU s/GiB = user+system CPU seconds of the target process (all threads, /proc/<pid>/stat) per GiB moved.');
  notes.push(`4 KiB "random" writes: qemu-img bench has no random mode, so the stride is ${'25013'} × 4 KiB (a prime number of blocks), which visits every block of the LUN once per lap in a scattered order.`);
  if (opts.agentEnv.length) notes.push(`agent environment: ${opts.agentEnv.join(' ')}.`);
  if (opts.cpuProf) notes.push(`agent ran under node --cpu-prof (profile in ${opts.cpuProf}); its figures include the profiler's overhead.`);

  const objectMd = opts.object && wanted.includes('agent')
    ? await objectBench({ repoRoot, workDir, duration, reps, initiatorName: ctx.initiatorName }).catch((e: Error) => `\nObject-storage LUN rows failed: ${e.message}\n`)
    : '';
  const replicationMd = opts.replication && wanted.includes('agent')
    ? await replicationBench({ repoRoot, workDir, duration, initiatorName: ctx.initiatorName }).catch((e: Error) => `\nReplication rows failed: ${e.message}\n`)
    : '';
  const relayMd = opts.relay && wanted.includes('agent')
    ? await relayBench({ repoRoot, workDir, duration, reps, initiatorName: ctx.initiatorName }).catch((e: Error) => `\nRelay rows failed: ${e.message}\n`)
    : '';
  const restoreMd = opts.restore && wanted.includes('agent')
    ? await restoreBench({ repoRoot, workDir, duration, reps, initiatorName: ctx.initiatorName }).catch((e: Error) => `\nRestore rows failed: ${e.message}\n`)
    : '';
  await runCleanups();
  const report: Report = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: info,
    settings: `${reps} runs per workload and target (median), ${duration} s per run after ${warmup} s of discarded warm-up per row and target, order agent/tgt alternating${opts.quick ? ', --quick' : ''}; command: npm run bench --${process.argv.slice(2).map((x) => ` ${x}`).join('')}`,
    rows, ceilingMiBs, ceilingNa, memory, peakRss, notes, load,
  };
  let md = renderMarkdown(report) + objectMd + replicationMd + relayMd + restoreMd;
  if (opts.cpuProf) {
    // The agent writes its profile when it exits, i.e. during the cleanup above.
    const prof = await newestProfile(resolve(opts.cpuProf));
    md += prof
      ? `\nAgent CPU profile (${prof}), top self time:\n\n${await profileTable(prof, 20, repoRoot + '/')}\n`
      : `\nAgent CPU profile: none written in ${opts.cpuProf} (did the agent exit cleanly on SIGTERM?)\n`;
  }
  process.stdout.write(md);
  if (opts.markdown) {
    const existing = await readFile(opts.markdown, 'utf8').catch(() => undefined);
    await writeFile(opts.markdown, spliceReport(existing, md));
    console.error(`bench: report written to ${opts.markdown}`);
  }
}

main().catch(async (err) => {
  console.error(`bench: ${err instanceof Error ? err.message : String(err)}`);
  await runCleanups();
  process.exit(1);
});
