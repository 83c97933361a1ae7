// Import throughput (issue 13): a tgt LUN with CHAP copied into an object LUN (s3rver on the same box) by the
// agent's importer, against reading the same LUN with qemu-img bench, in the same run, several times over;
// with Outpost's initiator alone and s3rver's own PUT rate as the two halves' ceilings.
// `node dist/scripts/bench/import.js [--quick] [--reps N]` prints the markdown section.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { InitiatorSession } from '../../agent/initiator/session.js';
import { read16 } from '../../agent/initiator/scsi.js';
import { Bucket } from '../../agent/backstores/object/bucket.js';
import { outpost, spawnAgent, tempAgentDirs } from '../../test/helpers/agent.js';
import { freePort } from '../../test/helpers/net.js';
import { startS3rver } from '../../test/helpers/s3rver.js';
import { TgtDaemon } from '../../test/helpers/tgt.js';
import { onCleanup, run, sleep } from './proc.js';
import { runStandalone, type SectionOptions } from './standalone.js';

const MiB = 1024 * 1024;
const SRC_IQN = 'iqn.2024-01.dev.outpost.bench:import-src';
const TARGET = 'iqn.2024-01.dev.outpost.bench:imported';
const CHAP = { user: 'bench', password: 'bench-import-secret' };

const rate = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000);
const load1 = () => loadavg()[0]!.toFixed(1);

/** "median (min–max)" of MB/s figures. */
function spread(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return s.length === 1 ? `${mid.toFixed(1)}` : `${mid.toFixed(1)} (${s[0]!.toFixed(1)}–${s[s.length - 1]!.toFixed(1)})`;
}

export async function benchImport(o: SectionOptions & { sizeMiB: number }): Promise<string> {
  const size = o.sizeMiB * MiB;
  const path = join(o.workDir, 'src.img');
  const fh = await open(path, 'w');
  for (let i = 0; i < o.sizeMiB; i++) await fh.write(randomBytes(MiB));
  await fh.close();
  const tgt = await TgtDaemon.start({ workDir: o.workDir });
  onCleanup(() => tgt.stop());
  await tgt.addTarget(1, SRC_IQN, [{ path }], CHAP);
  const url = `iscsi://${CHAP.user}%${CHAP.password}@127.0.0.1:${tgt.port}/${SRC_IQN}/1`;

  const s3 = await startS3rver('outpost-bench');
  onCleanup(() => s3.dispose());
  Object.assign(process.env, s3.env); // this process PUTs too (the s3rver row)
  const port = await freePort();
  const dirs = await tempAgentDirs({
    storage_objects: [],
    targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 },
      luns: [], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  });
  const agent = await spawnAgent({ dirs, env: { ...s3.env } });
  onCleanup(() => agent.cleanup());
  const cli = (args: string[]) => outpost(dirs.stateDir, args, s3.env);

  const qemu: number[] = [];
  const initiator: number[] = [];
  const puts: number[] = [];
  const copy: number[] = [];
  const created: number[] = [];
  const loads: string[] = [];
  let ratio: number[] = [];
  for (let rep = 1; rep <= o.reps; rep++) {
    loads.push(load1());
    // qemu-img bench: sequential 256 KiB reads at depth 8 over the whole LUN once.
    const q = await run('qemu-img', ['bench', '-f', 'raw', '-c', String(size / (256 * 1024)), '-d', '8', '-s', '256k', url], { timeoutMs: 600_000 });
    if (q.code !== 0) throw new Error(`qemu-img bench: ${q.stdout}${q.stderr}`);
    qemu.push(rate(size, q.wallMs));

    // Outpost's initiator alone: the reads the copy sends (256 KiB, depth 16).
    const t0 = performance.now();
    const s = await InitiatorSession.open({ host: '127.0.0.1', port: tgt.port, targetName: SRC_IQN, chap: { user: CHAP.user, secret: CHAP.password }, queueDepth: 16 });
    const per = 256 * 1024;
    await Promise.all(Array.from({ length: size / per }, (_, i) => read16(s, 1, (i * per) / 512, per / 512, 512)));
    await s.logout();
    initiator.push(rate(size, performance.now() - t0));

    // s3rver alone: the same bytes as 4 MiB PUTs, 8 at a time (what the copy uploads).
    const bucket = new Bucket({ bucket: s3.bucket, endpoint: s3.endpoint, forcePathStyle: true });
    const body = randomBytes(4 * MiB);
    const t2 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => { while (next < size / (4 * MiB)) await bucket.put(`put-bench/${rep}/${next++}`, body, 120_000); }));
    puts.push(rate(size, performance.now() - t2));
    await bucket.delete(await bucket.list(`put-bench/${rep}/`, Infinity, 30_000), 30_000);
    bucket.destroy();

    // The import: create → every chunk in the bucket and the record says done.
    const name = `vol${rep}`;
    const t1 = performance.now();
    const c = await cli(['--no-wait', '/backstores/object', 'create', name, String(size), `bucket=${s3.bucket}`, `prefix=${name}/`, `endpoint=${s3.endpoint}`,
      'force_path_style=true', 'cache_size=256M', `import=${url}`]);
    if (c.code !== 0) throw new Error(`create: ${c.stdout}${c.stderr}`);
    for (;;) {
      const i = await cli([`/backstores/object/${name}`, 'info']);
      if (/import state: done/.test(i.stdout)) break;
      await sleep(250);
    }
    created.push(rate(size, performance.now() - t1));
    // The copy alone: from the agent's "import created" line to its "import complete" line (pino times, ms).
    const lines = agent.stderr().split('\n').filter((l) => l.includes(`"backstore":"${name}"`));
    const at = (msg: string) => Number(/"time":(\d+)/.exec(lines.find((l) => l.includes(msg)) ?? '')?.[1]);
    copy.push(rate(size, at('import complete') - at('import created')));
    ratio.push(copy[copy.length - 1]! / qemu[qemu.length - 1]!);
    const d = await cli(['/backstores/object', 'delete', name, 'destroy=true']);
    if (d.code !== 0) throw new Error(`delete: ${d.stdout}${d.stderr}`);
    loads.push(load1());
  }
  ratio = ratio.map((r) => r * 100);
  return [
    `### Import from a legacy SAN (${o.sizeMiB} MiB LUN on tgt, CHAP; ${o.reps} runs, median (min–max))`, '',
    '| Path | MB/s |', '|---|---|',
    `| qemu-img bench read (256 KiB, depth 8) | ${spread(qemu)} |`,
    `| Outpost initiator read alone (256 KiB, depth 16) | ${spread(initiator)} |`,
    `| s3rver PUT alone (4 MiB objects, 8 at a time) | ${spread(puts)} |`,
    `| **Outpost import, copy only (log lines)** | **${spread(copy)}** |`,
    `| Outpost import, create command to \`info\` saying done | ${spread(created)} |`,
    `| import ÷ qemu-img, same run (%) | ${spread(ratio)} |`, '',
    'Each run reads the LUN with qemu-img, then with the initiator, then PUTs the same bytes to s3rver, then imports it into a fresh prefix',
    '(8 chunks of 4 MiB in flight, each read as 16 READ (16)s and uploaded as one chunk object, straight to the bucket), then destroys it.',
    'The create row adds opening the volume (writer lease with write-settle-read-back on s3rver) and one `outpost … info` poll every 250 ms.',
    `1-minute load average before/after each run: ${loads.join(', ')} (2 cores).`, '',
  ].join('\n');
}

const repsArg = process.argv.indexOf('--reps');
runStandalone(import.meta.url, 'import', (o) => benchImport({ ...o, reps: repsArg > 0 ? Number(process.argv[repsArg + 1]) || o.reps : o.reps,
  sizeMiB: process.argv.includes('--quick') ? 64 : 256 }));
