// Issue 17, one writer per volume across agents (docs/writer-lease.md): two agents (two state dirs) on one
// bucket prefix. The first takes the writer lease (epoch 1); the second becomes a reader — reads serve the
// writer's committed image, its writes get DATA PROTECT 07/27/00. After the writer stops cleanly the other
// takes over at the next open with epoch 2 and every byte the writer acknowledged; a writer whose lease was
// taken refuses writes with the same sense and writes no root.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { outpost, spawnAgent, tempAgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { S3Client, GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { RawScsi } from '../object/raw-scsi.js';

const MiB = 1024 * 1024;
const TARGET = 'iqn.2003-01.org.outpost.test:lease';
const INITIATOR = 'iqn.2003-01.org.outpost.test:lease-host';
const PREFIX = 'lease/vol1/';
// Short for the test, long enough that renewals (every LEASE_MS / 6) keep up on a loaded 2-core machine.
const LEASE_MS = 12_000;

let s3: S3rverHandle;
let client: S3Client;
const agents: SpawnedAgent[] = [];
before(async () => {
  s3 = await startS3rver();
  client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
});
after(async () => {
  for (const a of agents) await a.cleanup();
  client?.destroy();
  await s3?.dispose();
});

interface Site { agent: SpawnedAgent; port: number; opts: string }

async function site(prefix = PREFIX): Promise<Site> {
  const port = await freePort();
  const config = {
    storage_objects: [{
      plugin: 'object', name: 'vol1', size: 64 * MiB, wwn: '6001405b1b2c3d4e', bucket: s3.bucket, prefix, endpoint: s3.endpoint,
      force_path_style: true, cache_size: 16 * MiB, lease_ms: LEASE_MS, lease_settle_ms: 2000, read_timeout_ms: 2000, upload_delay_ms: 50, commit_interval_ms: 200,
    }],
    targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true,
      attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 },
      luns: [{ index: 0, storage_object: '/backstores/object/vol1' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  };
  const agent = await spawnAgent({ dirs: await tempAgentDirs(config), env: { ...s3.env } });
  agents.push(agent);
  return { agent, port, opts: `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=0,initiator-name=${INITIATOR}` };
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    p.once('exit', (code) => resolve({ code, out }));
  });
}

async function info(a: SpawnedAgent): Promise<Map<string, string>> {
  const r = await outpost(a.stateDir, ['/backstores/object/vol1', 'info'], s3.env);
  assert.equal(r.code, 0, r.stderr);
  return new Map(r.stdout.split('\n').filter((l) => l.startsWith('  ') && l.includes(': ')).map((l) => {
    const i = l.indexOf(': ');
    return [l.slice(2, i), l.slice(i + 2)] as [string, string];
  }));
}

async function settled(a: SpawnedAgent): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const i = await info(a);
    // RPO 0: everything written is named by a root in the bucket.
    if (/^0 bytes/.test(i.get('dirty bytes') ?? '') && i.get('uploads in flight') === '0' && i.get('oldest dirty age (RPO)') === '0 ms') return;
    if (Date.now() > deadline) throw new Error(`did not settle: ${JSON.stringify([...i])}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function lease(prefix = PREFIX): Promise<{ holder: string; epoch: number; released: boolean }> {
  const r = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}lease.json` }));
  return JSON.parse(await r.Body!.transformToString()) as { holder: string; epoch: number; released: boolean };
}

async function newestRootEpoch(): Promise<number | undefined> {
  const key = (await s3.listKeys(`${PREFIX}roots/`))[0]!;
  const r = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
  // Format 2 roots (docs/bucket-format.md): newest first in key order, the JSON on the first line of the frame.
  return (JSON.parse((await r.Body!.transformToString()).split('\n')[0]!) as { epoch?: number }).epoch;
}

const pattern = (b: number, at: number, len: string): string[] => ['-c', `write -P ${b} ${at} ${len}`];

test('two agents on one prefix: one writer, the other a reader whose writes get 07/27/00; the takeover after a clean stop keeps every byte', { timeout: 300_000 }, async () => {
  const a = await site();
  await assertRole(a.agent, 'writer', '1');
  let w = await run('qemu-io', [...pattern(0xa1, 0, '8M'), '-c', 'flush', '--image-opts', a.opts]);
  assert.equal(w.code, 0, w.out);
  await settled(a.agent);

  const b = await site();
  await assertRole(b.agent, 'reader', '1');
  assert.match((await info(b.agent)).get('lease holder') ?? '', /\/vol1\//);
  // The reader serves the writer's committed image.
  let r = await run('qemu-io', ['-r', '-c', 'read -P 0xa1 0 8M', '--image-opts', b.opts]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed/);
  // Its writes are refused with DATA PROTECT / WRITE PROTECTED, and nothing reaches the bucket.
  const keysBefore = (await s3.listKeys(PREFIX)).filter((k) => !k.endsWith('lease.json')).sort();
  const raw = await RawScsi.open(b.port, INITIATOR, TARGET);
  try {
    const out = await raw.write(100, randomBytes(4096));
    assert.deepEqual(out, { status: 2, key: 0x7, asc: 0x27, ascq: 0x00 });
  } finally {
    raw.close();
  }
  // Meanwhile the writer keeps acknowledging.
  w = await run('qemu-io', [...pattern(0xa2, 8 * MiB, '4M'), '-c', 'flush', '--image-opts', a.opts]);
  assert.equal(w.code, 0, w.out);
  await settled(a.agent);
  assert.ok((await s3.listKeys(PREFIX)).length >= keysBefore.length);
  assert.equal((await lease()).epoch, 1);
  assert.equal(await newestRootEpoch(), 1);

  // Clean stop of the writer releases the lease; the reader takes over at its next open with epoch 2.
  assert.equal(await a.agent.stop(), 0);
  assert.equal((await lease()).released, true);
  assert.equal(await b.agent.stop(), 0);
  b.agent = await spawnAgent({ dirs: b.agent, env: { ...s3.env } });
  agents.push(b.agent);
  await assertRole(b.agent, 'writer', '2');
  r = await run('qemu-io', ['-r', '-c', 'read -P 0xa1 0 8M', '-c', `read -P 0xa2 ${8 * MiB} 4M`, '--image-opts', b.opts]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed/, 'every byte the first writer acknowledged is there');
  w = await run('qemu-io', [...pattern(0xb1, 12 * MiB, '1M'), '-c', 'flush', '--image-opts', b.opts]);
  assert.equal(w.code, 0, w.out);
  await settled(b.agent);
  assert.equal(await newestRootEpoch(), 2, 'roots written by the new writer carry its epoch');
  assert.equal((await lease()).epoch, 2);

  // The old writer, restarted now, finds the lease held: a reader of epoch 2's image.
  a.agent = await spawnAgent({ dirs: a.agent, env: { ...s3.env } });
  agents.push(a.agent);
  await assertRole(a.agent, 'reader', '2');
  r = await run('qemu-io', ['-r', '-c', `read -P 0xb1 ${12 * MiB} 1M`, '--image-opts', a.opts]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed/);
  await a.agent.stop();
  await b.agent.stop();
});

test('a writer whose lease another agent took refuses writes with 07/27/00 and writes no more roots', { timeout: 120_000 }, async () => {
  const a = await site(); // takes over the released lease from the previous test (epoch 3)
  await assertRole(a.agent, 'writer');
  const epoch = (await lease()).epoch;
  // A rival record, as after this writer's lease ran out while it could not reach the bucket.
  const rival = { format: 'outpost-lease', version: 1, holder: 'elsewhere/vol1/rival', token: 'rival', epoch: epoch + 1,
    expires_ms: Date.now() + 600_000, expires: new Date(Date.now() + 600_000).toISOString(), released: false };
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${PREFIX}lease.json`, Body: JSON.stringify(rival) }));
  const deadline = Date.now() + LEASE_MS * 2;
  while ((await info(a.agent)).get('lease role') !== 'fenced') {
    assert.ok(Date.now() < deadline, 'the writer notices within two renew periods');
    await new Promise((r) => setTimeout(r, 200));
  }
  const rootsBefore = await s3.listKeys(`${PREFIX}roots/`);
  const raw = await RawScsi.open(a.port, INITIATOR, TARGET);
  try {
    assert.deepEqual(await raw.write(200, randomBytes(4096)), { status: 2, key: 0x7, asc: 0x27, ascq: 0x00 });
    assert.deepEqual(await raw.read(0, 8), { status: 0 }, 'reads still work');
  } finally {
    raw.close();
  }
  assert.match((await info(a.agent)).get('last error') ?? '', /writer lease lost/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual(await s3.listKeys(`${PREFIX}roots/`), rootsBefore);
  assert.equal(await a.agent.stop(), 0);
  assert.equal((await lease()).holder, rival.holder, 'the fenced writer does not release what is not its own');
});

async function assertRole(a: SpawnedAgent, role: string, epoch?: string): Promise<void> {
  const i = await info(a);
  if (!i.has('lease role')) assert.fail(`no live figures: ${(await outpost(a.stateDir, ['status'], s3.env)).stdout}`);
  assert.equal(i.get('lease role'), role, JSON.stringify([...i]));
  if (epoch) assert.equal(i.get('lease epoch'), epoch);
}

test('a journal left by a writer whose lease passed to another is not replayed over the newer epoch', { timeout: 180_000 }, async () => {
  const P3 = 'lease/vol3/';
  const a = await site(P3);
  await assertRole(a.agent, 'writer');
  await s3.stop();
  const w = await run('qemu-io', [...pattern(0xc1, 20 * MiB, '1M'), '-c', 'flush', '--image-opts', a.opts]);
  await s3.start();
  assert.equal(w.code, 0, w.out);
  a.agent.proc.kill('SIGKILL'); // acknowledged and journaled, never uploaded
  await a.agent.stop();
  // Its lease runs out; another agent takes the volume and writes the same range.
  await new Promise((r) => setTimeout(r, LEASE_MS + 1500));
  const b = await site(P3);
  await assertRole(b.agent, 'writer');
  const newEpoch = (await lease(P3)).epoch;
  const w2 = await run('qemu-io', [...pattern(0xc2, 20 * MiB, '1M'), '-c', 'flush', '--image-opts', b.opts]);
  assert.equal(w2.code, 0, w2.out);
  assert.equal(await b.agent.stop(), 0);

  a.agent = await spawnAgent({ dirs: a.agent, env: { ...s3.env } });
  agents.push(a.agent);
  const status = await outpost(a.agent.stateDir, ['status'], s3.env);
  assert.match(status.stdout, /vol1: ERROR .*journaled chunks not in the bucket, but .* wrote epoch \d+ since; they are kept/);
  assert.equal(await a.agent.stop(), 0);
  // The newer epoch's data stands.
  const c = await site(P3);
  await assertRole(c.agent, 'writer');
  assert.ok((await lease(P3)).epoch > newEpoch);
  const r = await run('qemu-io', ['-r', '-c', `read -P 0xc2 ${20 * MiB} 1M`, '--image-opts', c.opts]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed/);
  assert.equal(await c.agent.stop(), 0);
});
