// Issue 2 end to end: the real `outpost agent` process, started from the saveconfig.json targetcli writes on
// RHEL, used by Debian's libiscsi tools and qemu: discovery, ACLs, CHAP (one-way and mutual), capacity,
// 64 MiB through qemu's iSCSI driver surviving a restart, a write-protected mapping (issue 3's ReadOnly
// suite), and SIGTERM in the middle of a write stream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, outpost, spawnAgent, tempAgentDirs, type AgentDirs, type SpawnedAgent } from '../helpers/agent.js';
import { freePort } from '../helpers/net.js';
import { run } from '../helpers/iscsi-fixture.js';
import { parseCuOutput } from './scsi/cu-output.js';

// A copy of /work/shared/fixtures/lio-saveconfig-rhel.json, kept in the repo so `npm test` runs on a fresh clone.
const FIXTURE = join(REPO, 'test/fixtures/lio-saveconfig-rhel.json');
const TARGET = 'iqn.2014-06.com.example:remotedisk1';
const INITIATOR = 'iqn.2014-06.com.example:desktop0';
const STRANGER = 'iqn.2014-06.com.example:laptop9';
/** desktop0's one-way credentials and mappings without its mutual ones (see fixtureConfig). */
const ONE_WAY = 'iqn.2014-06.com.example:desktop0-oneway';
const CHAP = 'desktop0%desktop0-secret-0001@';
const MUTUAL = { LIBISCSI_CHAP_TARGET_USERNAME: 'server0', LIBISCSI_CHAP_TARGET_PASSWORD: 'server0-secret-0002' };
const FILE_SIZE = 104857600; // storage_objects[fileio].size in the fixture
const RD_SIZE = 67108864; // storage_objects[rd_mcp].size
const DATA = 64 << 20;

/**
 * The fixture as loaded here. Rewritten: the fileio and block `dev` paths (temp files) and the portal
 * (127.0.0.1, a free port). Also discovery CHAP: the fixture has discovery auth off, but libiscsi sends the
 * URL's credentials and LIBISCSI_CHAP_TARGET_* on the discovery session too, and with target credentials
 * set it refuses any security stage in which the target does not prove itself (CHAP_N/CHAP_R). So
 * `iscsi-ls -s` with mutual CHAP needs mutual discovery auth, with the same secrets as desktop0's ACL.
 */
async function fixtureConfig(dirs: AgentDirs, port: number, discoveryChap = true): Promise<Record<string, any>> {
  const doc = JSON.parse(await readFile(FIXTURE, 'utf8'));
  for (const so of doc.storage_objects) {
    // block1 names an LVM volume (/dev/iSCSI_vg/disk1_lv); here it is a 16 MiB file. No TPG LUN uses it.
    if (so.plugin === 'block') {
      so.dev = join(dirs.dir, 'disk1_lv');
      await writeFile(so.dev, Buffer.alloc(0));
      const fh = await open(so.dev, 'r+');
      await fh.truncate(16 << 20);
      await fh.close();
    }
    if (so.plugin === 'fileio') so.dev = join(dirs.dir, 'disk1_file'); // created sparse by the agent
  }
  if (discoveryChap) Object.assign(doc.fabric_modules[0], {
    discovery_enable_auth: true, discovery_userid: 'desktop0', discovery_password: 'desktop0-secret-0001',
    discovery_mutual_userid: 'server0', discovery_mutual_password: 'server0-secret-0002',
  });
  doc.targets[0].tpgs[0].portals = [{ ...doc.targets[0].tpgs[0].portals[0], ip_address: '127.0.0.1', port }];
  // An ACL with mutual credentials (desktop0's) requires mutual CHAP (issue 18). qemu's iSCSI driver and
  // iscsi-ls's LUN listing only do one-way CHAP, so they log in as a second ACL without mutual credentials.
  const acls = doc.targets[0].tpgs[0].node_acls;
  acls.push({ ...acls[0], node_wwn: ONE_WAY, chap_mutual_userid: '', chap_mutual_password: '' });
  return doc;
}

interface Stream {
  proc: ReturnType<typeof spawn>;
  out(): string;
  done: Promise<number | null>;
}

/** qemu-io running a list of commands against an image given by --image-opts. */
function qemuIo(commands: string[], opts: string, env: Record<string, string> = {}): Stream {
  const args = commands.flatMap((c) => ['-c', c]);
  const proc = spawn('qemu-io', [...args, '--image-opts', opts], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const done = new Promise<number | null>((r) => proc.once('close', (code) => r(code)));
  return { proc, out: () => out, done };
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with p's value, or 'timeout' after ms (the timer never outlives the race). */
async function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

describe('outpost agent from the RHEL targetcli saveconfig.json, with Debian initiators', { timeout: 5 * 60_000 }, () => {
  let dirs: AgentDirs;
  let agent: SpawnedAgent | undefined;
  let port = 0;
  let dataFile = '';
  const url = (lun: number, creds = CHAP) => `iscsi://${creds}127.0.0.1:${port}/${TARGET}/${lun}`;
  const imageOpts = (lun: number, extra = '') =>
    `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=${lun},initiator-name=${ONE_WAY},user=desktop0,password=desktop0-secret-0001${extra}`;

  /** SIGTERM; asserts exit code 0 within 10 s. Returns how long it took. */
  async function stopAgent(): Promise<number> {
    const t0 = Date.now();
    const code = await within(agent!.stop(), 10_000);
    const ms = Date.now() - t0;
    assert.equal(code, 0, `agent exit after SIGTERM: ${code}\n${agent!.stderr().slice(-2000)}`);
    return ms;
  }

  before(async () => {
    port = await freePort();
    dirs = await tempAgentDirs();
    await writeFile(dirs.configPath, JSON.stringify(await fixtureConfig(dirs, port), null, 2));
    agent = await spawnAgent({ dirs });
  });

  after(async () => {
    await agent?.cleanup();
  });

  it('loads every storage object of the file (block on a file, fileio created sparse at its size)', async () => {
    const ls = await outpost(dirs.stateDir, ['/backstores', 'ls']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /block1 .*disk1_lv \(16\.0MiB\)/);
    assert.match(ls.stdout, /file1 .*disk1_file \(100\.0MiB\) write-back activated/);
    assert.match(ls.stdout, /rd1 .*\(64\.0MiB\) activated/);
  });

  it('iscsi-ls -s with mutual CHAP discovers the target, its portal and both LUNs', async () => {
    const r = await run('iscsi-ls', ['-s', '-i', ONE_WAY, `iscsi://${CHAP}127.0.0.1:${port}`], MUTUAL);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, new RegExp(`Target:${TARGET} Portal:127\\.0\\.0\\.1:${port},1`));
    assert.match(r.stdout, /Lun:0\s+Type:DIRECT_ACCESS \(Size:99M\)/);
    assert.match(r.stdout, /Lun:1\s+Type:DIRECT_ACCESS \(Size:63M\)/);
  });

  it('an initiator with no ACL (generate_node_acls=0) neither sees the target nor logs in', async () => {
    // Same (valid) discovery credentials: discovery succeeds, but SendTargets lists nothing for it.
    const ls = await run('iscsi-ls', ['-s', '-i', STRANGER, `iscsi://${CHAP}127.0.0.1:${port}`], MUTUAL);
    assert.equal(ls.code, 0, ls.stdout + ls.stderr);
    assert.doesNotMatch(ls.stdout, /Target:/);
    for (const creds of [CHAP, '']) {
      const inq = await run('iscsi-inq', ['-i', STRANGER, url(0, creds)]);
      assert.notEqual(inq.code, 0);
      assert.match(inq.stdout + inq.stderr, /Authorization failure/);
    }
  });

  // libiscsi offers AuthMethod=CHAP,None whenever it has credentials; when discovery answers None it
  // repeats InitiatorName/TargetName/SessionType unchanged in the operational stage, which must be accepted.
  it('with discovery auth off as in the file, iscsi-ls -s with one-way CHAP lists the target and logs in to its LUNs', async () => {
    const dirs2 = await tempAgentDirs();
    const port2 = await freePort();
    await writeFile(dirs2.configPath, JSON.stringify(await fixtureConfig(dirs2, port2, false), null, 2));
    const second = await spawnAgent({ dirs: dirs2 });
    try {
      const r = await run('iscsi-ls', ['-s', '-i', ONE_WAY, `iscsi://${CHAP}127.0.0.1:${port2}`]);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.match(r.stdout, new RegExp(`Target:${TARGET} Portal:127\\.0\\.0\\.1:${port2},1`));
      assert.match(r.stdout, /Lun:0\s+Type:DIRECT_ACCESS \(Size:99M\)/);
    } finally {
      await second.cleanup();
    }
  });

  it('iscsi-readcapacity16 reports the configured sizes (fileio 104857600 B, ramdisk 64 MiB)', async () => {
    const r = await run('iscsi-readcapacity16', ['-i', INITIATOR, url(0)], MUTUAL);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`RETURNED LOGICAL BLOCK ADDRESS:${FILE_SIZE / 512 - 1}\\b`));
    assert.match(r.stdout, /LOGICAL BLOCK LENGTH IN BYTES:512\b/);
    assert.match(r.stdout, new RegExp(`Total size:${FILE_SIZE}\\b`));
    const rd = await run('iscsi-readcapacity16', ['-i', INITIATOR, url(1)], MUTUAL);
    assert.equal(rd.code, 0, rd.stderr);
    assert.match(rd.stdout, new RegExp(`Total size:${RD_SIZE}\\b`));
  });

  it('CHAP: wrong secret is an authentication failure; mutual CHAP fails when the target proves the wrong secret', async () => {
    const wrong = await run('iscsi-inq', ['-i', INITIATOR, url(0, 'desktop0%desktop0-secret-9999@')]);
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stdout + wrong.stderr, /Authentication failure/);
    const none = await run('iscsi-inq', ['-i', INITIATOR, url(0, '')]);
    assert.notEqual(none.code, 0, 'authentication=1: a login without CHAP must fail');
    const oneWay = await run('iscsi-inq', ['-i', INITIATOR, url(0)]);
    assert.notEqual(oneWay.code, 0, 'mutual credentials on the ACL: a one-way login must fail');
    const mutualOk = await run('iscsi-inq', ['-i', INITIATOR, url(0)], MUTUAL);
    assert.equal(mutualOk.code, 0, mutualOk.stderr);
    const mutualBad = await run('iscsi-inq', ['-i', INITIATOR, url(0)], { ...MUTUAL, LIBISCSI_CHAP_TARGET_PASSWORD: 'not-the-server0-secret' });
    assert.notEqual(mutualBad.code, 0);
    assert.match(mutualBad.stdout + mutualBad.stderr, /Invalid CHAP_R/);
  });

  it('qemu-img writes 64 MiB of random data to the fileio LUN and reads the same bytes back', async () => {
    const src = join(dirs.dir, 'random.raw');
    await writeFile(src, randomBytes(DATA));
    // qemu's iscsi driver does one-way CHAP (it has no option for the target's secret).
    const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-t', 'writeback', src, '--target-image-opts', imageOpts(0)], {}, 120_000);
    assert.equal(w.code, 0, w.stderr);
    dataFile = src;
    await assertLunHolds(src, 'after the write');
  });

  /** Reads LUN 0 back through qemu and compares its first 64 MiB with `src`. */
  async function assertLunHolds(src: string, when: string): Promise<void> {
    const back = join(dirs.dir, 'back.raw');
    const r = await run('qemu-img', ['convert', '--image-opts', imageOpts(0), '-O', 'raw', back], {}, 120_000);
    assert.equal(r.code, 0, r.stderr);
    const [want, got] = await Promise.all([readFile(src), readFile(back)]);
    assert.equal(got.length, FILE_SIZE);
    assert.ok(got.subarray(0, DATA).equals(want), `LUN 0 differs from the data written (${when})`);
  }

  it('SIGTERM exits 0 promptly; after a restart the 64 MiB are still identical', async (t) => {
    assert.ok(dataFile, 'needs the data written by the previous test');
    const ms = await stopAgent();
    t.diagnostic(`SIGTERM with no I/O: exit 0 after ${ms} ms`);
    agent = await spawnAgent({ dirs });
    await assertLunHolds(dataFile, 'after SIGTERM and restart');
  });

  it('the write-protected mapping (LUN 1): qemu sees WP in MODE SENSE, reads work', async () => {
    const w = await run('qemu-io', ['-c', 'write -P 0xab 0 64k', '--image-opts', imageOpts(1)]);
    assert.notEqual(w.code, 0);
    assert.doesNotMatch(w.stdout, /wrote/);
    assert.match(w.stdout + w.stderr, /write protected/); // qemu's iscsi driver reads the WP bit with MODE SENSE
    const r = await run('qemu-io', ['-r', '-c', 'read -P 0 0 64k', '--image-opts', imageOpts(1)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /read 65536\/65536 bytes/);
  });

  it('issue 3: iscsi-test-cu -d SCSI.ReadOnly* on the write_protect mapping passes, nothing skipped', async (t) => {
    // ReadOnlySBC sends every medium write (WRITE 10/12/16, WRITE SAME 10/16 ± UNMAP, WRITE AND VERIFY,
    // COMPARE AND WRITE, ORWRITE, UNMAP, …) and expects CHECK CONDITION DATA PROTECT / WRITE PROTECTED.
    const r = await run('iscsi-test-cu', ['--dataloss', '--verbose', '--Verbose-scsi', '-i', INITIATOR, '-t', 'SCSI.ReadOnly*', url(1)], MUTUAL, 120_000);
    const { tests, summary } = parseCuOutput(r.stdout + r.stderr);
    assert.ok(summary, `no run summary:\n${r.stdout.slice(-3000)}${r.stderr}`);
    assert.ok(tests.length >= 1 && tests.length === summary.total, `parsed ${tests.length} of ${summary.total} tests`);
    t.diagnostic(`ReadOnly: ${tests.map((x) => `${x.suite}.${x.test} ${x.skipped ? `SKIPPED (${x.skipped})` : x.result}`).join(', ')}`);
    assert.deepEqual(tests.filter((x) => x.result !== 'passed' || x.skipped).map((x) => `${x.suite}.${x.test}: ${x.skipped ?? x.result}`), []);
    assert.equal(summary.failed, 0);
    const writes = (r.stdout.match(/\[OK\] \S+ returned CHECK_CONDITION DATA PROTECTION\(0x07\) WRITE_PROTECTED\(0x2700\)/g) ?? []).length;
    assert.ok(writes >= 10, `only ${writes} writes were refused with DATA PROTECT/WRITE PROTECTED`);
  });

  it('SIGTERM during a write stream: acknowledged writes are on disk, the initiator sees no I/O error and resumes after restart', async (t) => {
    // 200 FUA writes of 256 KiB, each with its own pattern; one at a time, so each "wrote" line is an ack.
    const N = 200;
    const CHUNK = 256 << 10;
    const pattern = (i: number) => (i % 250) + 1;
    const cmds = Array.from({ length: N }, (_, i) => `write -f -P ${pattern(i)} ${i * CHUNK} ${CHUNK}`);
    const io = qemuIo(cmds, imageOpts(0));
    try {
      const acked = () => (io.out().match(/wrote 262144\/262144 bytes/g) ?? []).length;
      for (let t = 0; acked() < 20; t++) {
        assert.ok(t < 600, `qemu-io made no progress: ${io.out().slice(-500)}`);
        await wait(50);
      }
      const ms = await stopAgent();
      // qemu-io's stdout is block-buffered: what it printed so far is a subset of what it had acknowledged.
      const ackedBeforeStop = acked();
      const file = await readFile(join(dirs.dir, 'disk1_file'));
      for (let i = 0; i < ackedBeforeStop; i++) {
        const slice = file.subarray(i * CHUNK, (i + 1) * CHUNK);
        assert.ok(slice.every((b) => b === pattern(i)), `acknowledged FUA write #${i} is not in the file after SIGTERM`);
      }
      t.diagnostic(`SIGTERM mid-stream: agent exited 0 in ${ms} ms, ≥${ackedBeforeStop} FUA writes acknowledged before it`);
      // libiscsi reconnects (and re-logs in) once the agent is back on the same portal; qemu-io goes on.
      agent = await spawnAgent({ dirs });
      const code = await within(io.done, 90_000);
      assert.equal(code, 0, `qemu-io did not complete after the restart:\n${io.out().slice(-2000)}`);
      assert.doesNotMatch(io.out(), /write failed|I\/O error|Input\/output error/i);
      const after = await readFile(join(dirs.dir, 'disk1_file'));
      for (let i = 0; i < N; i++) {
        assert.ok(after.subarray(i * CHUNK, (i + 1) * CHUNK).every((b) => b === pattern(i)), `write #${i} missing after the restart`);
      }
    } finally {
      if (io.proc.exitCode === null) io.proc.kill('SIGKILL');
    }
  });
});
