// Issue 14: an object LUN's cache figures on the agent's /metrics — qemu-img writes while the bucket is
// unreachable, the dirty bytes and recovery point show it; once the bucket is back they fall to zero.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { outpost, spawnAgent, tempAgentDirs, type AgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { run } from '../object/shell-agent.js';
import { sampleValue, scrape, type Family } from './prom-text.js';

const hasQemu = spawnSync('qemu-img', ['--version']).status === 0;
const skip = !hasQemu && 'qemu-img not installed';
const TARGET = 'iqn.2003-01.org.outpost.test:metrics-obj';
const INITIATOR = 'iqn.2003-01.org.outpost.test:metrics-obj-host';
const LUN = '/backstores/object/vol1';
const MiB = 1024 * 1024;
const DATA = 16 * MiB;

describe('object LUN metrics', { skip, timeout: 240_000 }, () => {
  let s3: S3rverHandle;
  let dirs: AgentDirs;
  let agent: SpawnedAgent;
  let url = '';
  let port = 0;
  let src = '';

  const sh = async (args: string[]): Promise<void> => {
    const r = await outpost(dirs.stateDir, args, s3.env);
    assert.equal(r.code, 0, `outpost ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  };
  const until = async (what: string, cond: (m: Map<string, Family>) => boolean, ms: number): Promise<Map<string, Family>> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = await scrape(url);
      if (cond(m)) return m;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const v = (m: Map<string, Family>, name: string): number => {
    const x = sampleValue(m, name, { lun: LUN });
    assert.notEqual(x, undefined, `${name} missing`);
    return x!;
  };

  before(async () => {
    s3 = await startS3rver();
    dirs = await tempAgentDirs();
    port = await freePort();
    const mport = await freePort();
    url = `http://127.0.0.1:${mport}/metrics`;
    src = join(dirs.dir, 'src.img');
    await writeFile(src, randomBytes(DATA));
    agent = await spawnAgent({ dirs, env: { ...s3.env }, args: ['--metrics-listen', `127.0.0.1:${mport}`] });
    await sh(['set', 'global', 'auto_add_default_portal=false']);
    await sh(['/backstores/object', 'create', 'vol1', '256M', `bucket=${s3.bucket}`, 'prefix=metrics/vol1', `endpoint=${s3.endpoint}`, 'force_path_style=true', 'cache_size=64M']);
    await sh(['/iscsi', 'create', TARGET]);
    await sh([`/iscsi/${TARGET}/tpg1/luns`, 'create', LUN]);
    await sh([`/iscsi/${TARGET}/tpg1/acls`, 'create', INITIATOR]);
    await sh([`/iscsi/${TARGET}/tpg1/portals`, 'create', '127.0.0.1', String(port)]);
  });
  after(async () => {
    await agent?.cleanup();
    await s3?.dispose();
  });

  it('dirty bytes and recovery point rise while the bucket is down, and fall to zero after the flush', async () => {
    const m0 = await scrape(url);
    assert.equal(v(m0, 'outpost_object_dirty_bytes'), 0);
    assert.equal(v(m0, 'outpost_object_cache_size_bytes'), 64 * MiB);
    const puts0 = v(m0, 'outpost_object_put_requests_total');
    const up0 = v(m0, 'outpost_object_uploaded_bytes_total');
    const req = (m: Map<string, Family>, op: string, outcome: string) => sampleValue(m, 'outpost_object_requests_total', { lun: LUN, op, outcome }) ?? NaN;
    const putErr0 = req(m0, 'put', 'error');
    const putOk0 = req(m0, 'put', 'ok');
    assert.equal(putErr0, 0, 'no PUT failed while the bucket was up');
    assert.ok(putOk0 > 0, 'opening the volume PUT its descriptor and root');

    await s3.stop(); // nothing can be uploaded: what qemu-img writes stays dirty in the cache
    const opts = `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=0,initiator-name=${INITIATOR}`;
    const w = await run('qemu-img', ['convert', '-n', '-t', 'writeback', '-f', 'raw', '--target-image-opts', src, opts]);
    assert.equal(w.code, 0, `qemu-img convert: ${w.out}`);
    const m1 = await until('recovery point above 1 s', (m) => (sampleValue(m, 'outpost_object_recovery_point_seconds', { lun: LUN }) ?? 0) > 1, 30_000);
    assert.equal(v(m1, 'outpost_lun_write_bytes_total'), DATA, 'LUN write bytes moved by the bytes written');
    assert.ok(v(m1, 'outpost_object_dirty_bytes') >= DATA, `dirty bytes ${v(m1, 'outpost_object_dirty_bytes')} hold the ${DATA} written`);
    assert.ok(v(m1, 'outpost_object_cached_bytes') >= DATA);
    assert.equal(v(m1, 'outpost_object_uploaded_bytes_total'), up0, 'nothing uploaded while the bucket is down');
    const m1e = await until('PUT errors while the bucket is down', (m) => req(m, 'put', 'error') > putErr0, 30_000);
    assert.equal(req(m1e, 'put', 'ok'), putOk0, 'no PUT succeeded while the bucket was down');

    await s3.start();
    // uploaded chunks count as at risk until the manifest naming them is committed: the recovery point
    // reaches 0 last
    // the error flag clears with the next successful bucket call (an upload, a commit or a lease renewal),
    // which may come a moment after the last upload on a loaded machine
    const m2 = await until('dirty bytes, recovery point and the error flag to drain', (m) => ['outpost_object_dirty_bytes', 'outpost_object_uploads_in_flight', 'outpost_object_recovery_point_seconds', 'outpost_object_upload_error']
      .every((n) => sampleValue(m, n, { lun: LUN }) === 0), 90_000);
    assert.ok(v(m2, 'outpost_object_uploaded_bytes_total') - up0 >= DATA, 'uploaded bytes cover what was written');
    assert.ok(v(m2, 'outpost_object_put_requests_total') > puts0);
    assert.ok(req(m2, 'put', 'ok') > putOk0, 'PUTs succeed again once the bucket is back');
    assert.equal(v(m2, 'outpost_object_upload_error'), 0, 'the error clears once uploads succeed');
    const hit = v(m2, 'outpost_object_cache_hit_ratio');
    assert.ok(hit >= 0 && hit <= 1, `hit ratio ${hit}`);
  });
});
