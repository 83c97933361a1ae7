// Issue 13 bench rows: live migration of an object LUN between two agents (s3rver, Node gateway, two spawned
// agents on loopback; test/agent/sites/migration-harness.ts). Per volume size: W MiB written through A with
// qemu-io, then a path-aware writer keeps writing 4 KiB blocks while the LUN migrates A → B. Reported: the
// gateway's pause_ms (A transitioning → B active/optimized), the longest gap between two acknowledged
// writes at the initiator, what A uploaded during the migration and in all, and uploads per GiB of volume.
// Standalone: node dist/scripts/bench/migration.js [--quick]
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { api } from '../../test/helpers/gateway.js';
import { MiB, PathWriter, TARGET, startSites } from '../../test/agent/sites/migration-harness.js';
import { runStandalone, type SectionOptions } from './standalone.js';

const GiB = 1024 * MiB;

function qemuWrite(portal: { ip: string; port: number }, bytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('qemu-io', ['-f', 'raw', '-c', `write -P 0x5a 0 ${bytes}`, '-c', 'flush', `iscsi://${portal.ip}:${portal.port}/${TARGET}/0`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`qemu-io exited ${code}: ${out}`))));
  });
}

interface Row { size: number; written: number; pause: number; gap: number; during: number; total: number; puts: number }

async function one(repo: string, size: number, written: number): Promise<Row> {
  const s = await startSites({ size, cacheSize: 256 * MiB, prefix: `bench/mig-${size}` });
  const w = new PathWriter();
  try {
    await qemuWrite(s.a.portal, written);
    await w.addPath(s.a.portal.ip, s.a.portal.port, '400000000001');
    w.start(16 * MiB / 512);
    // A's counters before the migration; after it A's LUN is a fresh reader, so its totals are these plus
    // what the migration reports it uploaded up to the hand-over
    const before = await fetchFigures(repo, s.a.agent.stateDir);
    const id = await s.migrate();
    for (;;) {
      const m = (await api(s.gw, 'GET', `/v1/migrations/${id}`)).body;
      if (m.state === 'failed') throw new Error(m.error);
      if (/waiting for the initiator/.test(m.phase)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await w.addPath(s.b.portal.ip, s.b.portal.port, '400000000002');
    const m = await s.settle(id, 600_000);
    if (m.state !== 'done') throw new Error(m.error);
    await new Promise((r) => setTimeout(r, 1000));
    await w.stop();
    if (w.errors.length) throw new Error(w.errors.join('; '));
    return { size, written, pause: m.pause_ms, gap: w.maxGapMs, during: m.uploaded_bytes, total: before.uploaded + m.uploaded_bytes, puts: before.puts + m.put_count };
  } finally {
    w.close();
    await s.dispose();
  }
}

/** A's upload counters since its LUN opened, from `outpost … info`. */
async function fetchFigures(repo: string, stateDir: string): Promise<{ uploaded: number; puts: number }> {
  const out = await new Promise<string>((resolve) => {
    const p = spawn(process.execPath, [join(repo, 'bin/outpost.js'), '--state-dir', stateDir, '/backstores/object/vol1', 'info'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let o = '';
    p.stdout.on('data', (d: Buffer) => (o += d));
    p.once('exit', () => resolve(o));
  });
  const num = (label: string): number => Number(new RegExp(`${label}: .*?\\((\\d+)\\)|${label}: (\\d+)`).exec(out)?.slice(1).find(Boolean) ?? NaN);
  return { uploaded: num('bytes uploaded'), puts: num('PUT count') };
}

export async function migrationBench(o: SectionOptions): Promise<string> {
  const quick = o.duration <= 2;
  const cases: Array<[number, number]> = quick ? [[GiB, 64 * MiB]] : [[GiB, 128 * MiB], [16 * GiB, 512 * MiB]];
  const rows: Row[] = [];
  for (const [size, written] of cases) rows.push(await one(o.repoRoot, size, written));
  const mib = (b: number) => (b / MiB).toFixed(1);
  return [
    '### Live migration (object LUN, agent A → agent B, same bucket; s3rver, loopback)',
    '',
    '| volume | written before | pause_ms (gateway) | longest write gap at the initiator | uploaded during migration | uploaded by A in all | PUTs by A | uploaded per GiB of volume |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.size / GiB} GiB | ${mib(r.written)} MiB | ${r.pause} ms | ${r.gap} ms | ${mib(r.during)} MiB | ${mib(r.total)} MiB | ${r.puts} | ${mib(r.total / (r.size / GiB))} MiB |`),
    '',
  ].join('\n');
}

runStandalone(import.meta.url, 'migration', migrationBench);
