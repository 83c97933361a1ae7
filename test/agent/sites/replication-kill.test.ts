// kill -9 of the primary agent at points of replication (docs/replication.md): objects, pages and root reach the
// replica in that order, so after every kill each root at the replica names only objects that are there; the
// restarted agent resumes from what the replica holds and the replica catches up to the primary's bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnAgent } from '../../helpers/agent.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { referencedKeys } from '../../../agent/backstores/object/roots.js';
import { openObjectBackstore, type ObjectBackstoreSpec } from '../../../agent/backstores/object.js';
import { MiB, figure, run, shellObjectAgent, waitFor, type ShellObjectAgent } from '../object/shell-agent.js';

const hasQemu = spawnSync('qemu-io', ['--version']).status === 0;
const skip = !hasQemu && 'qemu-io not installed';
const DR = 'dr/vol1/';
let h: ShellObjectAgent;
let replica: S3rverHandle;

before(async () => {
  if (skip) return;
  replica = await startS3rver('replica');
  h = await shellObjectAgent({ size: '64M', cacheSize: '32M', prefix: 'prim/vol1/' });
});
after(async () => { await h?.dispose(); await replica?.dispose(); });

/** Every root at the replica names only objects the replica holds. */
async function replicaComplete(): Promise<number> {
  const bucket = new Bucket({ bucket: replica.bucket, endpoint: replica.endpoint, forcePathStyle: true });
  try {
    const ref = await referencedKeys(bucket, DR, 4 * MiB, 1000, 10_000);
    const present = new Set(await replica.listKeys(DR));
    for (const k of ref.live) assert.ok(present.has(k), `a replica root names ${k}, which is missing`);
    return [...present].filter((k) => k.startsWith(`${DR}roots/`)).length;
  } finally {
    bucket.destroy();
  }
}

test('kill -9 of the primary while it replicates leaves a complete image at the replica, which then catches up', { skip, timeout: 600_000 }, async () => {
  const creds = join(h.dirs.dir, 'replica-credentials');
  await writeFile(creds, '[default]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n', { mode: 0o600 });
  await h.sh(['/backstores/object/vol1', 'replica', 'create', `bucket=${replica.bucket}`, `prefix=${DR}`, `endpoint=${replica.endpoint}`,
    'force_path_style=true', `credentials_file=${creds}`]);
  await h.sh(['saveconfig']);
  const kills = [300, 900, 1600, 2500];
  for (const [i, delay] of kills.entries()) {
    // Flushed writes (whole chunks and scattered small ones), then a kill while they are being uploaded and copied.
    const w = await run('qemu-io', ['-c', `write -P ${0x30 + i} ${i * 8}M 8M`, '-c', `write -P ${0x50 + i} ${40 + i}M 64k`, '-c', 'flush', '--image-opts', h.opts()]);
    assert.equal(w.code, 0, w.out);
    await new Promise((r) => setTimeout(r, delay));
    h.agent.proc.kill('SIGKILL');
    await new Promise<void>((r) => (h.agent.proc.exitCode !== null || h.agent.proc.signalCode !== null ? r() : h.agent.proc.once('exit', () => r())));
    await replicaComplete();
    h.agent = await spawnAgent({ dirs: h.dirs, env: { ...h.s3.env } });
  }
  // The restarted primary resumes: the replica reaches the primary's newest generation with nothing dirty.
  let last = new Map<string, string>();
  await waitFor(async () => {
    last = await h.info();
    return last.get('replica state')?.startsWith('current') === true && figure(last.get('dirty bytes')) === 0
      && last.get('replica generation') === last.get('manifest generation');
  }, 120_000, 'the replica to catch up after the kills').catch((e: Error) => { throw new Error(`${e.message}: ${JSON.stringify([...last])}`); });
  const roots = await replicaComplete();
  assert.ok(roots > 0, 'the replica holds a root');
  // The replica alone holds every flushed byte: open it as a volume of its own and read them back.
  const dir = await mkdtemp(join(tmpdir(), 'outpost-repl-kill-'));
  const restored = await openObjectBackstore({ plugin: 'object', name: 'restored', size: 64 * MiB, bucket: replica.bucket, prefix: DR, endpoint: replica.endpoint,
    force_path_style: true, cache_size: 16 * MiB, cache_dir: join(dir, 'cache') } as ObjectBackstoreSpec, { stateDir: dir });
  try {
    for (const [i] of kills.entries()) {
      assert.ok((await restored.read(i * 8 * MiB, 8 * MiB)).equals(Buffer.alloc(8 * MiB, 0x30 + i)), `trial ${i}: the 8 MiB write is at the replica`);
      assert.ok((await restored.read((40 + i) * MiB, 65536)).equals(Buffer.alloc(65536, 0x50 + i)), `trial ${i}: the 64 KiB write is at the replica`);
    }
  } finally {
    await restored.close();
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(`# replication kill trials: ${kills.length} (kills ${kills.join('/')} ms after a flushed write), replica roots after: ${roots}\n`);
});
