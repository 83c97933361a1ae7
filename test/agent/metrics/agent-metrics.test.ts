// Issue 14: `outpost agent --metrics-listen` scraped with a real text-format parser while qemu-img writes and
// reads a LUN through qemu's iSCSI driver; libiscsi logins refused by CHAP show up as login failures.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { spawnAgent, tempAgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { run } from '../object/shell-agent.js';
import { sampleSum, sampleValue, scrape } from './prom-text.js';

const exec = promisify(execFile);
const hasPeers = spawnSync('qemu-img', ['--version']).status === 0 && spawnSync('iscsi-inq', ['-h']).error === undefined;
const skip = !hasPeers && 'qemu-img or libiscsi-bin not installed';
const OPEN = 'iqn.2003-01.org.outpost.test:metrics-open';
const GUARDED = 'iqn.2003-01.org.outpost.test:metrics-chap';
const INITIATOR = 'iqn.2003-01.org.outpost.test:metrics-host';
const LUN = '/backstores/ramdisk/r0';
const MiB = 1024 * 1024;
const DATA = 12 * MiB;

describe('agent metrics endpoint', { skip, timeout: 180_000 }, () => {
  let agent: SpawnedAgent;
  let url = '';
  let port = 0;
  let src = '';
  const opts = () => `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${OPEN},lun=0,initiator-name=${INITIATOR}`;

  before(async () => {
    port = await freePort();
    const mport = await freePort();
    url = `http://127.0.0.1:${mport}/metrics`;
    const tpg = (luns: object[], auth: number) => ({ tag: 1, enable: true, attributes: { authentication: auth, generate_node_acls: auth ? 0 : 1, demo_mode_write_protect: 0 }, luns, portals: [{ ip_address: '127.0.0.1', port }], node_acls: auth ? [{ node_wwn: INITIATOR, chap_userid: 'someone', chap_password: 'Right-Secret-123', mapped_luns: [] }] : [] });
    const dirs = await tempAgentDirs({
      storage_objects: [{ plugin: 'rd_mcp', name: 'r0', size: 64 * MiB }],
      targets: [
        { wwn: OPEN, fabric: 'iscsi', tpgs: [tpg([{ index: 0, storage_object: LUN }], 0)] },
        { wwn: GUARDED, fabric: 'iscsi', tpgs: [tpg([], 1)] },
      ],
    });
    src = join(dirs.dir, 'src.img');
    await writeFile(src, randomBytes(DATA));
    agent = await spawnAgent({ dirs, args: ['--metrics-listen', `127.0.0.1:${mport}`] });
  });
  after(async () => { await agent?.cleanup(); });

  it('counts the bytes qemu-img writes and reads, with latency histograms and process metrics', async () => {
    const m0 = await scrape(url);
    const w0 = sampleValue(m0, 'outpost_lun_write_bytes_total', { lun: LUN }) ?? 0;
    const r0 = sampleValue(m0, 'outpost_lun_read_bytes_total', { lun: LUN }) ?? 0;
    assert.ok(sampleValue(m0, 'process_resident_memory_bytes')! > 0, 'process memory');
    assert.ok(sampleValue(m0, 'process_cpu_seconds_total')! > 0, 'process CPU');
    assert.equal(sampleValue(m0, 'outpost_path_up', { kind: 'portal', path: `127.0.0.1:${port}` }), 1);
    assert.equal(sampleValue(m0, 'outpost_lun_healthy', { lun: LUN, plugin: 'rd_mcp' }), 1);

    // scraped while qemu-img writes: every exposition parses and the byte counter never goes back
    const writing = run('qemu-img', ['convert', '-n', '-t', 'writeback', '-f', 'raw', '--target-image-opts', src, opts()]);
    let done = false;
    void writing.then(() => (done = true));
    const seen: number[] = [];
    while (!done) {
      seen.push(sampleValue(await scrape(url), 'outpost_lun_write_bytes_total', { lun: LUN }) ?? 0);
      await new Promise((r) => setTimeout(r, 20));
    }
    const w = await writing;
    assert.equal(w.code, 0, `qemu-img convert: ${w.out}`);
    assert.ok(seen.length >= 1 && seen.every((x, i) => i === 0 || x >= seen[i - 1]!), `write bytes during the copy: ${seen.join(' ')}`);
    const m1 = await scrape(url);
    const written = sampleValue(m1, 'outpost_lun_write_bytes_total', { lun: LUN })! - w0;
    assert.equal(written, DATA, 'write bytes moved by exactly the bytes qemu-img wrote');
    const writes = sampleValue(m1, 'outpost_lun_operations_total', { lun: LUN, op: 'write' })!;
    assert.ok(writes >= DATA / (2 * MiB), `write commands: ${writes}`);
    assert.equal(sampleValue(m1, 'outpost_lun_io_duration_seconds_count', { lun: LUN, op: 'write' }), writes, 'one latency sample per write');
    assert.equal(sampleValue(m1, 'outpost_lun_io_duration_seconds_bucket', { lun: LUN, op: 'write', le: '+Inf' }), writes);
    assert.ok(sampleValue(m1, 'outpost_lun_io_duration_seconds_sum', { lun: LUN, op: 'write' })! > 0);

    const c = await run('qemu-img', ['compare', '--image-opts', `driver=file,filename=${src}`, opts()]);
    assert.equal(c.code, 0, `qemu-img compare: ${c.out}`);
    const m2 = await scrape(url);
    const read = sampleValue(m2, 'outpost_lun_read_bytes_total', { lun: LUN })! - r0;
    assert.ok(read >= DATA, `read bytes ${read} cover the ${DATA} bytes compared`);
    assert.equal(sampleValue(m2, 'outpost_lun_write_bytes_total', { lun: LUN })! - w0, DATA, 'reading wrote nothing');
    // each new nexus starts with a power-on unit attention: reported as an error by sense key
    assert.ok(sampleSum(m2, 'outpost_lun_errors_total', { lun: LUN, sense_key: 'UNIT_ATTENTION' }) >= 1);
  });

  it('shows sessions and connections per target and portal while an initiator is logged in', async () => {
    const perf = execFile('iscsi-perf', ['-i', INITIATOR, `iscsi://127.0.0.1:${port}/${OPEN}/0`], () => {});
    try {
      let m = await scrape(url);
      for (let i = 0; i < 100 && !sampleValue(m, 'outpost_iscsi_sessions', { target: OPEN, type: 'Normal' }); i++) {
        await new Promise((r) => setTimeout(r, 100));
        m = await scrape(url);
      }
      assert.equal(sampleValue(m, 'outpost_iscsi_sessions', { target: OPEN, type: 'Normal' }), 1);
      assert.equal(sampleValue(m, 'outpost_iscsi_connections', { target: OPEN, portal: `127.0.0.1:${port}` }), 1);
    } finally {
      perf.kill('SIGKILL');
    }
    let m = await scrape(url);
    for (let i = 0; i < 100 && sampleValue(m, 'outpost_iscsi_sessions', { target: OPEN }) !== undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
      m = await scrape(url);
    }
    assert.equal(sampleValue(m, 'outpost_iscsi_sessions', { target: OPEN }), undefined, 'the session is gone after the initiator died');
  });

  it('counts refused logins by reason: CHAP failures apart from initiators without an ACL', async () => {
    const m0 = await scrape(url);
    const n = (m: typeof m0, reason: string) => sampleValue(m, 'outpost_iscsi_login_failures_total', { reason }) ?? 0;
    for (let i = 0; i < 3; i++) {
      await assert.rejects(exec('iscsi-inq', ['-i', INITIATOR, `iscsi://someone%Wrong-Secret-1234@127.0.0.1:${port}/${GUARDED}/0`], { timeout: 10_000 }));
    }
    await assert.rejects(exec('iscsi-inq', ['-i', 'iqn.2003-01.org.outpost.test:stranger', `iscsi://someone%Right-Secret-123@127.0.0.1:${port}/${GUARDED}/0`], { timeout: 10_000 }));
    const m = await scrape(url);
    assert.equal(n(m, 'authentication_failure') - n(m0, 'authentication_failure'), 3, 'three CHAP failures');
    assert.equal(n(m, 'authorization_failure') - n(m0, 'authorization_failure'), 1, 'one initiator without an ACL');
    // the right secret logs in (that target maps no LUN, so INQUIRY itself then fails: no login failure)
    await exec('iscsi-inq', ['-i', INITIATOR, `iscsi://someone%Right-Secret-123@127.0.0.1:${port}/${GUARDED}/0`], { timeout: 10_000 }).catch((e: Error) => assert.match(e.message, /LOGICAL_UNIT_NOT_SUPPORTED/));
    assert.equal(sampleSum(await scrape(url), 'outpost_iscsi_login_failures_total'), sampleSum(m, 'outpost_iscsi_login_failures_total'), 'a good login is no failure');
  });

  it('serves /metrics only', async () => {
    assert.equal((await fetch(url.replace('/metrics', '/'))).status, 404);
    assert.equal((await fetch(url, { method: 'POST' })).status, 405);
  });
});

describe('agent --metrics-listen refusals', { timeout: 60_000 }, () => {
  it('a malformed address stops the agent with a clear error before anything listens', async () => {
    const dirs = await tempAgentDirs({ storage_objects: [], targets: [] });
    const r = spawnSync(process.execPath, [join(import.meta.dirname, '../../../../bin/outpost.js'), 'agent', '--config', dirs.configPath, '--state-dir', dirs.stateDir, '--metrics-listen', 'nowhere:port'], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--metrics-listen: expected HOST:PORT/);
  });
});
