// Object LUN through the real agent, iSCSI and qemu-img (issue 6): a 512 MiB LUN with a 32 MiB cache takes
// 192 MiB of random data, the cache dir stays bounded, SIGKILL after qemu's flush loses nothing, and after a
// clean stop the bucket alone serves the same bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnAgent, tempAgentDirs, type AgentDirs } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { fixture, watchDiskUsage, MiB, type Fixture } from './object-fixture.js';

const TARGET = 'iqn.2003-01.org.outpost.test:objlun';
const hasQemu = spawnSync('qemu-img', ['--version']).status === 0;

let fx: Fixture;
before(async () => { fx = await fixture(); });
after(async () => { await fx.dispose(); });

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    p.once('exit', (code) => resolve({ code, out }));
  });
}

test('qemu-img writes 192 MiB to a 512 MiB object LUN with a 32 MiB cache; survives SIGKILL and cache loss', { skip: !hasQemu && 'qemu-img not installed', timeout: 600_000 }, async () => {
  const port = await freePort();
  const dirs: AgentDirs = await tempAgentDirs();
  const cacheDir = join(dirs.dir, 'cache', 'vol1');
  const config = {
    storage_objects: [{
      plugin: 'object', name: 'vol1', size: 512 * MiB, wwn: '6001405a1b2c3d4e', bucket: fx.s3.bucket, prefix: 'iscsi/vol1',
      endpoint: fx.s3.endpoint, force_path_style: true, cache_dir: cacheDir, cache_size: 32 * MiB, attributes: { block_size: 512 },
    }],
    targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true,
      attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 },
      luns: [{ index: 0, storage_object: '/backstores/object/vol1' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  };
  await rm(dirs.dir, { recursive: true, force: true });
  const d2 = await tempAgentDirs(config);
  Object.assign(dirs, d2);
  const src = join(dirs.dir, 'src.img');
  const fh = await open(src, 'w');
  for (let i = 0; i < 192; i++) await fh.write(randomBytes(MiB));
  await fh.close();
  const url = `iscsi://127.0.0.1:${port}/${TARGET}/0`;
  const env = fx.s3.env;
  const compare = async (): Promise<void> => {
    const r = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', src, url]);
    assert.equal(r.code, 0, `qemu-img compare: ${r.out}`);
  };

  let agent = await spawnAgent({ dirs: { ...dirs, dir: dirs.dir, configPath: dirs.configPath, stateDir: dirs.stateDir }, env: { ...env } });
  try {
    const du = watchDiskUsage(cacheDir, 25);
    const w = await run('qemu-img', ['convert', '-n', '-t', 'writeback', '-f', 'raw', '-O', 'raw', src, url]);
    const maxDu = await du.stop();
    assert.equal(w.code, 0, `qemu-img convert: ${w.out}`);
    console.log(`# object LUN: max cache dir ${(maxDu / MiB).toFixed(2)} MiB (bound 32 MiB)`);
    assert.ok(maxDu <= 32 * MiB + 256 * 1024, `cache dir reached ${maxDu} bytes`);

    // qemu-img convert defaults to cache=unsafe (flushes dropped); -t writeback makes it SYNCHRONIZE CACHE at the end.
    agent.proc.kill('SIGKILL'); // qemu-img's final flush has returned
    await agent.stop();
    agent = await spawnAgent({ dirs, env: { ...env } });
    await compare();
    assert.equal(await agent.stop(), 0);
    const chunks = await fx.s3.listKeys('iscsi/vol1/chunks/');
    console.log(`# object LUN: ${chunks.length} chunk objects for 192 MiB`);

    await rm(cacheDir, { recursive: true, force: true });
    agent = await spawnAgent({ dirs, env: { ...env } });
    await compare();
  } finally {
    await agent.cleanup();
  }
});
