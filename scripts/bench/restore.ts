// Issue 12 bench rows: restore at another site (docs/dr.md) — time from the shell's create of an object LUN on a
// 16 GiB volume (256 MiB written at the primary) to its first READ answered, at fresh agents; and the background
// prefetch of the primary's hottest chunks: its throughput and the hit ratio of the primary's read pattern re-run.
// Standalone: node dist/scripts/bench/restore.js [--quick]
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { AdminClient } from '../../agent/admin/client.js';
import { adminSocketPath } from '../../agent/admin/protocol.js';
import { freePort } from '../../test/helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../test/helpers/s3rver.js';
import { RawScsi } from '../../test/agent/object/raw-scsi.js';
import { onCleanup, run, sleep, startDaemon, terminate } from './proc.js';
import { lastLines } from './parse.js';
import { runStandalone, type SectionOptions } from './standalone.js';
import { fmt, median } from './report.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const IQN = 'iqn.2024-01.dev.outpost.bench:restore';
const SIZE = 16 * GiB;
const WRITTEN = 256 * MiB;
/** The primary's read pattern: 4 KiB reads with an 80 KiB stride over the first 160 MiB (40 chunks). */
const PATTERN = ['-c', '2048', '-d', '8', '-s', '4k', '-S', String(80 * 1024)];
const RESTORE_CACHE = 256 * MiB;

interface Agent { child: ChildProcess; stateDir: string; port: number; logPath: string }

async function startAgent(dir: string, name: string, storage: object[], luns: object[], repoRoot: string, env: NodeJS.ProcessEnv): Promise<Agent> {
  const home = join(dir, name);
  const stateDir = join(home, 'state');
  await mkdir(stateDir, { recursive: true });
  const port = await freePort();
  const config = { fabric_modules: [], storage_objects: storage, targets: [{ fabric: 'iscsi', wwn: IQN, tpgs: [{
    tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 },
    parameters: { AuthMethod: 'None' }, luns, node_acls: [], portals: [{ ip_address: '127.0.0.1', port, iser: false, offload: false }] }] }] };
  const configPath = join(home, 'saveconfig.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const logPath = join(home, 'agent.log');
  const fd = openSync(logPath, 'a');
  const child = startDaemon(process.execPath, [join(repoRoot, 'bin/outpost.js'), 'agent', '--config', configPath, '--state-dir', stateDir], fd, env);
  closeSync(fd);
  onCleanup(() => terminate(child, 60_000));
  for (let i = 0; !(await AdminClient.connect(adminSocketPath(stateDir)).then((c) => { c?.close(); return Boolean(c); })); i++) {
    if (child.exitCode !== null || i > 120) throw new Error(`${name} agent did not start: ${lastLines(await readFile(logPath, 'utf8').catch(() => ''), 3)}`);
    await sleep(250);
  }
  return { child, stateDir, port, logPath };
}

async function info(repoRoot: string, a: Agent, env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const r = await run(process.execPath, [join(repoRoot, 'bin/outpost.js'), '--state-dir', a.stateDir, '/backstores/object/vol1', 'info'], { timeoutMs: 20_000, env });
  if (r.code !== 0) throw new Error(`info: ${r.stdout}${r.stderr}`);
  return new Map(r.stdout.split('\n').filter((l) => l.startsWith('  ') && l.includes(': ')).map((l) => [l.slice(2, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)] as [string, string]));
}

const opts = (a: Agent, initiator: string) => `driver=iscsi,transport=tcp,portal=127.0.0.1:${a.port},target=${IQN},lun=0,initiator-name=${initiator}`;

/** Shell create + LUN mapping over the admin socket, then login and one READ: ms from the create to its answer. */
async function restoreOnce(a: Agent, s3: S3rverHandle, initiator: string, extra: string): Promise<number> {
  const c = (await AdminClient.connect(adminSocketPath(a.stateDir)))!;
  try {
    const t0 = performance.now();
    for (const line of [`/backstores/object create vol1 16G bucket=${s3.bucket} prefix=bench/vol1/ endpoint=${s3.endpoint} force_path_style=true cache_size=${RESTORE_CACHE} ${extra}`,
      `/iscsi/${IQN}/tpg1/luns create /backstores/object/vol1`]) {
      const r = await c.request({ op: 'exec', cwd: '/', line });
      if (!r.ok || r.error) throw new Error(`${line}: ${(r.output ?? []).join(' ')}`);
    }
    const raw = await RawScsi.open(a.port, initiator, IQN);
    try {
      const r = await raw.read((100 * MiB) / 512, 8);
      if (r.status !== 0) throw new Error(`first READ: ${JSON.stringify(r)}`);
      return performance.now() - t0;
    } finally {
      raw.close();
    }
  } finally {
    c.close();
  }
}

export async function restoreBench(o: SectionOptions): Promise<string> {
  const dir = await mkdtemp(join(o.workDir, 'restore-'));
  const s3 = await startS3rver('outpost-bench');
  onCleanup(() => s3.dispose());
  const env = { ...process.env, ...s3.env, OUTPOST_LOG_LEVEL: process.env.OUTPOST_LOG_LEVEL ?? 'warn' };
  const agents: Agent[] = [];
  try {
    const primary = await startAgent(dir, 'primary', [{ plugin: 'object', name: 'vol1', size: SIZE, bucket: s3.bucket, prefix: 'bench/vol1/', endpoint: s3.endpoint,
      force_path_style: true, cache_size: 512 * MiB, write_back: true, wwn: '5e1f0c2a-0b3e-4d6a-9f1e-0000000000b1', heat_interval_ms: 1000 }],
    [{ index: 0, storage_object: '/backstores/object/vol1' }], o.repoRoot, env);
    agents.push(primary);
    console.error(`[restore] primary: writing ${WRITTEN / MiB} MiB of a ${SIZE / GiB} GiB volume, then its read pattern…`);
    const w = await run('qemu-img', ['bench', '-w', '-t', 'none', '-c', String(WRITTEN / (128 * 1024)), '-d', '16', '-s', '128k', '--pattern=77',
      '--image-opts', opts(primary, o.initiatorName)], { timeoutMs: 900_000 });
    if (w.code !== 0) throw new Error(`qemu-img bench -w: ${lastLines(w.stdout + w.stderr)}`);
    for (let i = 0; !/^0 bytes/.test((await info(o.repoRoot, primary, env)).get('dirty bytes') ?? ''); i++) {
      if (i > 2400) throw new Error('primary did not upload');
      await sleep(250);
    }
    const pr = await run('qemu-img', ['bench', '-t', 'none', ...PATTERN, '--image-opts', opts(primary, o.initiatorName)], { timeoutMs: 300_000 });
    if (pr.code !== 0) throw new Error(`qemu-img bench (pattern): ${lastLines(pr.stdout + pr.stderr)}`);
    await sleep(2500); // the next heat map write (heat_interval_ms 1000)

    const ttfio: number[] = [];
    for (let rep = 1; rep <= o.reps; rep++) {
      const site = await startAgent(dir, `site-${rep}`, [], [], o.repoRoot, env);
      agents.push(site);
      ttfio.push(await restoreOnce(site, s3, o.initiatorName, 'prefetch=false'));
      console.error(`[restore] create → first READ, run ${rep}/${o.reps}: ${fmt(ttfio[ttfio.length - 1]!)} ms`);
      await terminate(site.child, 60_000);
    }

    const pf = await startAgent(dir, 'site-pf', [], [], o.repoRoot, env);
    agents.push(pf);
    const tPf = await restoreOnce(pf, s3, o.initiatorName, '');
    let line = '';
    for (let i = 0; !/^(done|failed|none)/.test(line = (await info(o.repoRoot, pf, env)).get('prefetch') ?? ''); i++) {
      if (i > 2400) throw new Error(`prefetch did not finish: ${line}`);
      await sleep(250);
    }
    const m = /^done: (\d+) hottest chunks in ([\d.]+) s \((\d+) fetched, ([\d.]+) MiB\)/.exec(line);
    const hit = async (a: Agent): Promise<string> => {
      const r = await run('qemu-img', ['bench', '-t', 'none', ...PATTERN, '--image-opts', opts(a, o.initiatorName)], { timeoutMs: 300_000 });
      if (r.code !== 0) throw new Error(`qemu-img bench (re-run): ${lastLines(r.stdout + r.stderr)}`);
      return (await info(o.repoRoot, a, env)).get('hit ratio') ?? 'n/a';
    };
    const hitPf = await hit(pf);
    const cold = await startAgent(dir, 'site-cold', [], [], o.repoRoot, env);
    agents.push(cold);
    await restoreOnce(cold, s3, o.initiatorName, 'prefetch=false');
    const hitCold = await hit(cold);

    const load = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
    return [
      '',
      '### Restore at another site (issue 12)',
      '',
      `A primary agent wrote ${WRITTEN / MiB} MiB to a ${SIZE / GiB} GiB object LUN on s3rver (loopback) and read 2048 × 4 KiB over its first 160 MiB; fresh agents then restored it (\`/backstores/object create … \` on the same prefix, LUN mapped, login, one READ). Load average at the end: ${load}.`,
      '',
      '| row | value |',
      '| --- | ---: |',
      `| restore: shell create → first READ answered, median of ${o.reps} fresh agents (${ttfio.map((v) => fmt(v)).join(', ')} ms) | ${fmt(median(ttfio))} ms |`,
      `| same, with prefetch starting in the background | ${fmt(tPf)} ms |`,
      m ? `| prefetch: ${m[1]} hottest chunks (${m[4]} MiB fetched) in ${m[2]} s, 2 at a time | ${fmt(Number(m[4]) / Number(m[2]))} MiB/s |` : `| prefetch | ${line} |`,
      `| the primary's read pattern re-run: hit ratio after prefetch / without | ${hitPf} / ${hitCold} |`,
      '',
    ].join('\n');
  } finally {
    for (const a of agents) await terminate(a.child, 60_000);
    await s3.dispose();
    await rm(dir, { recursive: true, force: true });
  }
}

runStandalone(import.meta.url, 'restore', restoreBench);
