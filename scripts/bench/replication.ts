// Issue 12 bench row: replication lag under a steady writer — an object LUN (s3rver A) replicated to a second
// s3rver (B) while qemu-io writes 1 MiB every 20 ms (a 50 MiB/s target) over iSCSI; the replica recovery point
// and bytes behind are scraped from the agent's Prometheus endpoint once a second.
// Standalone: node dist/scripts/bench/replication.js [--quick]
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../test/helpers/net.js';
import { startS3rver } from '../../test/helpers/s3rver.js';
import { run, sleep } from './proc.js';
import { lastLines } from './parse.js';
import { runStandalone, type SectionOptions } from './standalone.js';
import { startSectionAgent } from './section-agent.js';
import { fmt } from './report.js';

const MiB = 1024 * 1024;
const IQN = 'iqn.2024-01.dev.outpost.bench:replication';
const SIZE = 4096 * MiB;
const IO = MiB;
const EVERY_MS = 20;


function pct(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

/** Runs the replication row; returns a markdown section. Cleans up its agent, s3rvers and files itself. */
export async function replicationBench(o: Omit<SectionOptions, 'reps'>): Promise<string> {
  const dir = await mkdtemp(join(o.workDir, 'replication-'));
  const a = await startS3rver('bench-primary');
  const b = await startS3rver('bench-replica');
  const stateDir = join(dir, 'state');
  await mkdir(stateDir, { recursive: true });
  const port = await freePort();
  const metricsPort = await freePort();
  const env = { ...process.env, ...a.env, OUTPOST_LOG_LEVEL: process.env.OUTPOST_LOG_LEVEL ?? 'warn' };
  const agent = await startSectionAgent({
    repoRoot: o.repoRoot, dir, stateDir, iqn: IQN, port, env, args: ['--metrics-listen', `127.0.0.1:${metricsPort}`],
    storageObjects: [{
      plugin: 'object', name: 'rep', size: SIZE, bucket: a.bucket, prefix: 'bench/rep', endpoint: a.endpoint, force_path_style: true,
      cache_size: 512 * MiB, write_back: true, wwn: '5e1f0c2a-0b3e-4d6a-9f1e-0000000000c1', attributes: { block_size: 512 },
      replica: { bucket: b.bucket, prefix: 'dr/rep', endpoint: b.endpoint, force_path_style: true },
    }],
    luns: ['/backstores/object/rep'],
    after: async () => {
      await a.dispose();
      await b.dispose();
      await rm(dir, { recursive: true, force: true });
    },
  });
  const { portal, fail, stop } = agent;
  const scrape = async (): Promise<{ rp: number; behind: number; primary: number }> => {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const get = (name: string): number => Number(new RegExp(`^${name}\\{lun="/backstores/object/rep"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
    return { rp: get('outpost_replica_recovery_point_seconds'), behind: get('outpost_replica_bytes_behind'), primary: get('outpost_object_recovery_point_seconds') };
  };
  try {
    await agent.waitForLun(0);
    const seconds = Math.max(8, o.duration * 5);
    const n = Math.floor((seconds * 1000) / EVERY_MS);
    const args: string[] = [];
    for (let i = 0; i < n; i++) args.push('-c', `aio_write -P ${(i % 250) + 1} ${(i * IO) % SIZE} ${IO}`, '-c', `sleep ${EVERY_MS}`);
    args.push('-c', 'aio_flush', '--image-opts',
      `driver=iscsi,transport=tcp,portal=${portal},target=${IQN},lun=0,initiator-name=${o.initiatorName},cache.direct=on`);
    console.error(`[replication] qemu-io writing ${IO / MiB} MiB every ${EVERY_MS} ms for ~${seconds} s, replica on a second s3rver…`);
    const samples: Array<{ rp: number; behind: number; primary: number }> = [];
    const load0 = loadavg()[0]!;
    const t0 = performance.now();
    const writer = run('qemu-io', args, { timeoutMs: seconds * 1000 * 6 });
    let finished = false;
    void writer.then(() => { finished = true; });
    while (!finished) {
      await sleep(1000);
      const s = await scrape();
      if (Number.isFinite(s.rp)) samples.push(s);
    }
    const tWrite = (performance.now() - t0) / 1000;
    const w = await writer;
    const bad = (w.stdout + w.stderr).split('\n').find((l) => /error|failed/i.test(l));
    if (w.code !== 0 || bad) await fail(`qemu-io exited ${w.code}: ${bad ?? lastLines(w.stdout + w.stderr)}`);
    // The replica holds the newest generation once its recovery point is back to the primary's (≤ 1 s, quiet).
    const t1 = performance.now();
    for (;;) {
      const s = await scrape();
      if (s.behind === 0 && s.rp <= 1) break;
      if (performance.now() - t1 > 300_000) await fail(`replica still behind after 300 s (${s.behind} bytes)`);
      await sleep(500);
    }
    const settle = (performance.now() - t1) / 1000;
    const load1 = loadavg()[0]!;
    const rps = samples.map((s) => s.rp);
    const prim = samples.map((s) => s.primary);
    const written = (n * IO) / MiB;
    return [
      '',
      '### Replication lag (issue 12)',
      '',
      `One object LUN on s3rver A replicated to s3rver B (both on loopback, same machine) while \`qemu-io\` issues a 1 MiB \`aio_write\` every ${EVERY_MS} ms `
        + `(a 50 MiB/s target) over iSCSI for ${fmt(tWrite, 1)} s; the agent's Prometheus endpoint scraped once a second.`,
      '',
      '| writer MiB/s (achieved) | replica RPO p50 | p90 | max | primary RPO p50 / max | bytes behind max | settle after the writer stops | load (1 min) |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
      `| ${fmt(written / tWrite, 1)} | ${pct(rps, 50)} s | ${pct(rps, 90)} s | ${Math.max(...rps)} s | ${fmt(pct(prim, 50), 1)} / ${fmt(Math.max(...prim), 1)} s | ${fmt(Math.max(...samples.map((s) => s.behind)) / MiB, 1)} MiB | ${fmt(settle, 1)} s | ${fmt(load0, 1)} → ${fmt(load1, 1)} |`,
      '',
      `Replica RPO samples (s): ${rps.join(' ')}`,
      '',
      `Primary RPO samples (s): ${prim.map((x) => fmt(x, 1)).join(' ')}`,
      '',
    ].join('\n');
  } finally {
    await stop();
  }
}

runStandalone(import.meta.url, 'replication', (opts) => replicationBench(opts));
