// Issue 17, faults: with the bucket down, dirty data filling the cache makes a write wait at most
// write_timeout_ms and then fail with the retryable NOT READY 02/04/0A (not hang for the whole outage);
// SIGTERM during the outage drains for close_timeout_ms, exits 0, says what is left in the journal, and the
// next start uploads it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { outpost, spawnAgent, tempAgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { RawScsi } from './raw-scsi.js';

const MiB = 1024 * 1024;
const TARGET = 'iqn.2003-01.org.outpost.test:faults';
const INITIATOR = 'iqn.2003-01.org.outpost.test:faults-host';
const WRITE_TIMEOUT_MS = 3000;
const CLOSE_TIMEOUT_MS = 4000;
const CHUNK_LBAS = (4 * MiB) / 512;

let s3: S3rverHandle;
const agents: SpawnedAgent[] = [];
before(async () => { s3 = await startS3rver(); });
after(async () => {
  for (const a of agents) await a.cleanup();
  await s3?.dispose();
});

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
  return new Map(r.stdout.split('\n').filter((l) => l.startsWith('  ') && l.includes(': ')).map((l) => {
    const i = l.indexOf(': ');
    return [l.slice(2, i), l.slice(i + 2)] as [string, string];
  }));
}

test('bucket down, cache full of dirty data: a write fails after write_timeout_ms with 02/04/0A; SIGTERM drains, exits 0, the journal uploads at the next start', { timeout: 180_000 }, async () => {
  const port = await freePort();
  const config = {
    storage_objects: [{
      plugin: 'object', name: 'vol1', size: 64 * MiB, bucket: s3.bucket, prefix: 'faults/vol1', endpoint: s3.endpoint, force_path_style: true,
      cache_size: 8 * MiB, write_timeout_ms: WRITE_TIMEOUT_MS, close_timeout_ms: CLOSE_TIMEOUT_MS, read_timeout_ms: 2000, retry_max_ms: 500,
    }],
    targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true,
      attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 },
      luns: [{ index: 0, storage_object: '/backstores/object/vol1' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  };
  const dirs = await tempAgentDirs(config);
  let agent = await spawnAgent({ dirs, env: { ...s3.env } });
  agents.push(agent);
  const opts = `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=0,initiator-name=${INITIATOR}`;

  await s3.stop();
  // The cache budget counts bytes held (format 2: a partly written chunk costs only its sectors), so the two
  // chunks fill the 8 MiB cache with data that cannot be uploaded, all but the last 4 KiB of it.
  const fill = await run('qemu-io', ['-c', 'write -P 0x71 0 4M', '-c', `write -P 0x72 ${4 * MiB} ${4 * MiB - 4096}`, '-c', 'flush', '--image-opts', opts]);
  assert.equal(fill.code, 0, fill.out);
  assert.doesNotMatch(fill.out, /failed/, 'flushed: durable in the local journal');
  const raw = await RawScsi.open(port, INITIATOR, TARGET);
  try {
    const t0 = Date.now();
    const third = await raw.write(2 * CHUNK_LBAS, Buffer.alloc(4096, 0x73));
    const waited = Date.now() - t0;
    assert.deepEqual(third, { status: 2, key: 0x2, asc: 0x04, ascq: 0x0a }, 'retryable NOT READY');
    assert.ok(waited >= WRITE_TIMEOUT_MS - 200 && waited <= WRITE_TIMEOUT_MS + 5000, `write failed after ${waited} ms; bound ${WRITE_TIMEOUT_MS} ms`);
    console.log(`# backpressure: third write failed after ${waited} ms (bound ${WRITE_TIMEOUT_MS} ms)`);
    // A cached chunk still reads.
    assert.deepEqual(await raw.read(0, 8), { status: 0 });
  } finally {
    raw.close();
  }

  // SIGTERM during the outage: the drain is attempted for close_timeout_ms, then the agent exits 0.
  const t1 = Date.now();
  const code = await agent.stop();
  const took = Date.now() - t1;
  assert.equal(code, 0, agent.stderr().slice(-2000));

  assert.ok(took >= CLOSE_TIMEOUT_MS - 500 && took <= CLOSE_TIMEOUT_MS + 8000, `stopped after ${took} ms; close_timeout_ms ${CLOSE_TIMEOUT_MS}`);
  assert.match(agent.stderr(), /with 2 chunks \(8388608 bytes\) and 0 unmaps not yet in the bucket; they stay in the journal/);
  console.log(`# SIGTERM during outage: exit ${code} after ${took} ms`);

  // The bucket returns; the next start uploads the journal; then the bucket alone holds the data.
  await s3.start();
  agent = await spawnAgent({ dirs, env: { ...s3.env } });
  agents.push(agent);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const i = await info(agent);
    if (/^0 bytes/.test(i.get('dirty bytes') ?? '') && i.get('oldest dirty age (RPO)') === '0 ms') break;
    assert.ok(Date.now() < deadline, `journal not uploaded: ${JSON.stringify([...i])}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(await agent.stop(), 0);
  await rm(join(dirs.stateDir, 'cache', 'vol1', 'chunks'), { recursive: true, force: true });
  agent = await spawnAgent({ dirs, env: { ...s3.env } });
  agents.push(agent);
  const r = await run('qemu-io', ['-r', '-c', 'read -P 0x71 0 4k', '-c', `read -P 0x72 ${4 * MiB} 4k`, '-c', `read -P 0 ${8 * MiB} 4k`, '--image-opts', opts]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed/);
});

test('a clean restart keeps the cache warm: clean chunks the manifest still names are not fetched again', { timeout: 180_000 }, async () => {
  const port = await freePort();
  const config = {
    storage_objects: [{
      plugin: 'object', name: 'vol1', size: 64 * MiB, bucket: s3.bucket, prefix: 'faults/warm', endpoint: s3.endpoint, force_path_style: true,
      cache_size: 32 * MiB, upload_delay_ms: 50, commit_interval_ms: 200,
    }],
    targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true,
      attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 },
      luns: [{ index: 0, storage_object: '/backstores/object/vol1' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  };
  const dirs = await tempAgentDirs(config);
  let agent = await spawnAgent({ dirs, env: { ...s3.env } });
  agents.push(agent);
  const opts = `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=0,initiator-name=${INITIATOR}`;
  const w = await run('qemu-io', ['-c', 'write -P 0x5e 0 16M', '-c', 'flush', '--image-opts', opts]);
  assert.equal(w.code, 0, w.out);
  assert.equal(await agent.stop(), 0);

  agent = await spawnAgent({ dirs, env: { ...s3.env } });
  agents.push(agent);
  assert.match(agent.stderr(), /"chunks":4,"msg":"cache: kept clean chunks from the last clean close"/);
  const r = await run('qemu-io', ['-r', '-c', 'read -P 0x5e 0 16M', '--image-opts', opts]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed/);
  const i = await info(agent);
  const downloaded = Number(/\((\d+)\)/.exec(i.get('bytes downloaded') ?? '')?.[1]);
  console.log(`# warm restart: 16 MiB read back, ${downloaded} bytes downloaded, GET count ${i.get('GET count')}, hit ratio ${i.get('hit ratio')}`);
  assert.ok(downloaded < MiB, `only manifests and descriptor are fetched, not chunks (${downloaded} bytes)`);
  assert.equal(await agent.stop(), 0);

  // Another agent rewrites chunk 0 meanwhile (a new epoch): the old copy is not served, the others still are.
  const port2 = await freePort();
  const other = structuredClone(config);
  other.targets[0]!.tpgs[0]!.portals[0]!.port = port2;
  const y = await spawnAgent({ dirs: await tempAgentDirs(other), env: { ...s3.env } });
  agents.push(y);
  const w2 = await run('qemu-io', ['-c', 'write -P 0x6f 0 4M', '-c', 'flush', '--image-opts', opts.replace(`:${port},`, `:${port2},`)]);
  assert.equal(w2.code, 0, w2.out);
  assert.equal(await y.stop(), 0);
  agent = await spawnAgent({ dirs, env: { ...s3.env } });
  agents.push(agent);
  assert.match(agent.stderr(), /"chunks":3,"msg":"cache: kept clean chunks from the last clean close"/);
  const r2 = await run('qemu-io', ['-r', '-c', 'read -P 0x6f 0 4M', '-c', `read -P 0x5e ${4 * MiB} 12M`, '--image-opts', opts]);
  assert.equal(r2.code, 0, r2.out);
  assert.doesNotMatch(r2.out, /failed/);
  assert.equal(await agent.stop(), 0);
});

test('bucket down at start: the LUN is exported, cached chunks read, the rest get 02/04/0A; the bucket returns and it opens without a restart', { timeout: 180_000 }, async () => {
  const port = await freePort();
  const config = {
    storage_objects: [{
      plugin: 'object', name: 'vol1', size: 64 * MiB, bucket: s3.bucket, prefix: 'faults/down', endpoint: s3.endpoint, force_path_style: true,
      cache_size: 16 * MiB, read_timeout_ms: 2000, retry_max_ms: 1000, upload_delay_ms: 50, commit_interval_ms: 200,
    }],
    targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true,
      attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 },
      luns: [{ index: 0, storage_object: '/backstores/object/vol1' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  };
  const dirs = await tempAgentDirs(config);
  let agent = await spawnAgent({ dirs, env: { ...s3.env } });
  agents.push(agent);
  const opts = `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=0,initiator-name=${INITIATOR}`;
  const w = await run('qemu-io', ['-c', 'write -P 0x4d 0 4M', '-c', 'flush', '--image-opts', opts]);
  assert.equal(w.code, 0, w.out);
  assert.equal(await agent.stop(), 0);

  await s3.stop();
  try {
    agent = await spawnAgent({ dirs, env: { ...s3.env } });
    agents.push(agent);
    const url = `iscsi://127.0.0.1:${port}/${TARGET}/0`;
    const inq = await run('iscsi-inq', ['-i', INITIATOR, url]);
    assert.equal(inq.code, 0, inq.out);
    const cap = await run('iscsi-readcapacity16', ['-i', INITIATOR, url]);
    assert.equal(cap.code, 0, cap.out);
    assert.match(cap.out, /Total size:\s*67108864/);
    const cached = await run('qemu-io', ['-r', '-c', 'read -P 0x4d 0 4M', '--image-opts', opts]);
    assert.equal(cached.code, 0, cached.out);
    assert.doesNotMatch(cached.out, /failed/, 'the cached chunk is served while the bucket is down');
    const raw = await RawScsi.open(port, INITIATOR, TARGET);
    try {
      assert.deepEqual(await raw.read(5 * CHUNK_LBAS, 8), { status: 2, key: 0x2, asc: 0x04, ascq: 0x0a }, 'uncached read: retryable NOT READY');
      assert.deepEqual(await raw.write(5 * CHUNK_LBAS, Buffer.alloc(4096, 1)), { status: 2, key: 0x2, asc: 0x04, ascq: 0x0a }, 'no write before the lease');
    } finally {
      raw.close();
    }
  } finally {
    await s3.start();
  }
  const up = Date.now();
  const raw = await RawScsi.open(port, INITIATOR, TARGET);
  try {
    for (;;) {
      const r = await raw.read(5 * CHUNK_LBAS, 8);
      if (r.status === 0) break;
      assert.ok(Date.now() - up < 20_000, `still ${JSON.stringify(r)} ${Date.now() - up} ms after the bucket returned`);
      await new Promise((res) => setTimeout(res, 250));
    }
    console.log(`# bucket back: reads served ${Date.now() - up} ms later`);
    assert.deepEqual(await raw.write(5 * CHUNK_LBAS, Buffer.alloc(4096, 0x4e)), { status: 0 });
    assert.deepEqual(await raw.sync(), { status: 0 });
  } finally {
    raw.close();
  }
  assert.equal((await info(agent)).get('lease role'), 'writer');
  const r = await run('qemu-io', ['-r', '-c', 'read -P 0x4d 0 4M', '-c', `read -P 0x4e ${5 * 4 * MiB} 4k`, '--image-opts', opts]);
  assert.equal(r.code, 0, r.out);
  assert.doesNotMatch(r.out, /failed/);
  assert.equal(await agent.stop(), 0);
});
