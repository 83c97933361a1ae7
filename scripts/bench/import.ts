// Import throughput (issue 13): a tgt LUN with CHAP copied into an object LUN (s3rver on the same box) by the
// agent's importer, against reading the same LUN with qemu-img bench and with Outpost's initiator alone.
// `node dist/scripts/bench/import.js [--quick]` prints the markdown section.
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { InitiatorSession } from '../../agent/initiator/session.js';
import { read16 } from '../../agent/initiator/scsi.js';
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

const mbps = (bytes: number, ms: number) => (bytes / MiB / (ms / 1000)).toFixed(1);

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
  const rows: string[] = [];

  // qemu-img bench: sequential 256 KiB reads at depth 8 over the whole LUN once.
  const q = await run('qemu-img', ['bench', '-f', 'raw', '-c', String(size / (256 * 1024)), '-d', '8', '-s', '256k', url], { timeoutMs: 600_000 });
  if (q.code !== 0) throw new Error(`qemu-img bench: ${q.stdout}${q.stderr}`);
  rows.push(`| qemu-img bench read (256 KiB, depth 8) | ${mbps(size, q.wallMs)} MB/s | ${(q.wallMs / 1000).toFixed(1)} s |`);

  // Outpost's initiator alone, the same reads.
  const t0 = performance.now();
  const s = await InitiatorSession.open({ host: '127.0.0.1', port: tgt.port, targetName: SRC_IQN, chap: { user: CHAP.user, secret: CHAP.password }, queueDepth: 8 });
  const per = 256 * 1024;
  await Promise.all(Array.from({ length: size / per }, (_, i) => read16(s, 1, (i * per) / 512, per / 512, 512)));
  await s.logout();
  const initMs = performance.now() - t0;
  rows.push(`| Outpost initiator read (256 KiB, depth 8) | ${mbps(size, initMs)} MB/s | ${(initMs / 1000).toFixed(1)} s |`);

  // The import: create → every region in the object volume (cache + uploads to s3rver) and the record says done.
  const s3 = await startS3rver('outpost-bench');
  onCleanup(() => s3.dispose());
  const port = await freePort();
  const dirs = await tempAgentDirs({
    storage_objects: [],
    targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 },
      luns: [], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  });
  const agent = await spawnAgent({ dirs, env: { ...s3.env } });
  onCleanup(() => agent.cleanup());
  const cli = (args: string[]) => outpost(dirs.stateDir, args, s3.env);
  const t1 = performance.now();
  const c = await cli(['/backstores/object', 'create', 'vol1', String(size), `bucket=${s3.bucket}`, 'prefix=vol1/', `endpoint=${s3.endpoint}`,
    'force_path_style=true', 'cache_size=256M', `import=${url}`]);
  if (c.code !== 0) throw new Error(`create: ${c.stdout}${c.stderr}`);
  let uploaded = '';
  for (;;) {
    const i = await cli(['/backstores/object/vol1', 'info']);
    if (/import state: done/.test(i.stdout)) { uploaded = /bytes uploaded: (.*)/.exec(i.stdout)?.[1] ?? ''; break; }
    await sleep(250);
  }
  const impMs = performance.now() - t1;
  // The copy alone: from the agent's "import created" line to its "import complete" line (pino times, ms).
  const at = (msg: string) => Number(/"time":(\d+)[^\n]*/.exec(agent.stderr().split('\n').find((l) => l.includes(msg)) ?? '')?.[1]);
  const copyMs = at('import complete') - at('import created');
  rows.push(`| Outpost import into an object LUN, copy only (log lines) | ${mbps(size, copyMs)} MB/s | ${(copyMs / 1000).toFixed(1)} s |`);
  rows.push(`| Outpost import, create command to \`info\` saying done | ${mbps(size, impMs)} MB/s | ${(impMs / 1000).toFixed(1)} s |`);
  const load = execFileSync('uptime', { encoding: 'utf8' }).trim();
  return [
    `### Import from a legacy SAN (${o.sizeMiB} MiB LUN on tgt, CHAP)`, '',
    '| Path | Throughput | Time |', '|---|---|---|', ...rows, '',
    `The import copies 1 MiB regions, 4 at a time (each as 4 READ (16)s of 256 KiB), into the object LUN's cache; uploads to s3rver run meanwhile (bytes uploaded when done: ${uploaded}).`,
    'The create row adds opening the volume (writer lease with write-settle-read-back on s3rver) and one `outpost … info` poll every 250 ms.',
    `Load while measured: \`${load}\`.`, '',
  ].join('\n');
}

runStandalone(import.meta.url, 'import', (o) => benchImport({ ...o, sizeMiB: process.argv.includes('--quick') ? 64 : 256 }));
