// The non-comparative rows: loopback TCP ceiling (iperf3) and the 64-session memory check.
import { freePort } from '../../test/helpers/net.js';
import { run, startDaemon, terminate, memoryKiB, sleep } from './proc.js';
import { parseIperf3Json, parseIscsiPerf, lastLines } from './parse.js';
import { iscsiPerfArgs } from './runner.js';
import type { TargetUnderTest } from './target.js';
import type { MemoryResult } from './report.js';
import { WORKLOADS } from './workloads.js';

const MiB = 1024 * 1024;

/** One TCP stream over loopback for `seconds`; returns MiB/s received. */
export async function loopbackCeiling(seconds: number): Promise<number> {
  const port = await freePort();
  const server = startDaemon('iperf3', ['-s', '-1', '-B', '127.0.0.1', '-p', String(port)], 'ignore');
  try {
    let last = '';
    for (let i = 0; i < 20; i++) {
      await sleep(150);
      const r = await run('iperf3', ['-c', '127.0.0.1', '-p', String(port), '-t', String(seconds), '-J'], { timeoutMs: (seconds + 15) * 1000 });
      if (r.spawnError) throw new Error(`iperf3 could not start: ${r.spawnError}`);
      try {
        return parseIperf3Json(r.stdout) / MiB;
      } catch (err) {
        last = (err as Error).message;
        if (!/connect|refused/i.test(last + r.stdout)) throw err;
      }
    }
    throw new Error(last);
  } finally {
    await terminate(server, 1000);
  }
}

/**
 * `sessions` iscsi-perf processes (distinct initiator names, so no session reinstatement) doing
 * 4 KiB random reads at QD32 on the file LUN; samples the target's VmRSS while they run.
 */
export async function memoryCheck(t: TargetUnderTest, sessions: number, seconds: number): Promise<MemoryResult> {
  const res: MemoryResult = { target: t.name, sessions, ok: 0, totalIops: 0, failures: [] };
  const e = t.endpoint('file', false);
  if (t.unavailable || typeof e === 'string') return { ...res, na: t.unavailable ?? (e as string) };
  const w = WORKLOADS.find((x) => x.id === 'rr4k')!;
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      if (t.pid) peak = Math.max(peak, (await memoryKiB(t.pid).catch(() => ({ rss: 0 }))).rss);
      await sleep(200);
    }
  })();
  const runs = await Promise.all(Array.from({ length: sessions }, (_, i) =>
    run('iscsi-perf', iscsiPerfArgs(w, e, t.blockSize, seconds, `iqn.2024-01.dev.outpost.bench:mem-${process.pid}-${i}`), { timeoutMs: (seconds + 40) * 1000 })));
  sampling = false;
  await sampler;
  for (const r of runs) {
    try {
      if (r.code !== 0 || r.timedOut) throw new Error(r.timedOut ? 'iscsi-perf timed out' : `iscsi-perf exit ${r.code}: ${lastLines(r.stdout + r.stderr)}`);
      res.totalIops += parseIscsiPerf(r.stdout).iops;
      res.ok++;
    } catch (err) {
      res.failures.push((err as Error).message);
    }
  }
  if (t.pid) {
    res.peakRssMiB = peak / 1024;
    res.hwmMiB = (await memoryKiB(t.pid)).hwm / 1024;
  }
  return res;
}
