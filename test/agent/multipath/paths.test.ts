// Multipath over one TPG with two portals (127.0.0.1 and 127.0.0.2): discovery, one LU identity on
// both paths, data across paths, libiscsi's MultipathIO and PR suites with two I_T nexuses, and a path
// removed in the middle of a write stream on the other (real agent, libiscsi and qemu as initiators).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgentInProcess, outpost, type InProcessAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { QemuIoStream } from './qemu-io-stream.js';
import { TARGET, assertCunitAllPassed, lunUrl, multipathConfig, parseVpd83, rawSession, scsiPastUa, INQUIRY_83 } from './helpers.js';

const A = { ip: '127.0.0.1', port: 0 };
const B = { ip: '127.0.0.2', port: 0 };
let h: InProcessAgent;
const urlA = () => lunUrl(A.ip, A.port);
const urlB = () => lunUrl(B.ip, B.port);

before(async () => {
  A.port = await freePort(A.ip);
  B.port = await freePort(B.ip);
  h = await startAgentInProcess({ config: multipathConfig([{ tag: 1, portals: [A, B] }]) });
});

after(async () => {
  await h?.cleanup();
});

test('SendTargets lists both portals of the TPG with its TPGT, and the LUN answers through each', async () => {
  const r = await run('iscsi-ls', ['-s', `iscsi://${A.ip}:${A.port}`]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, new RegExp(`Target:${TARGET} Portal:127\\.0\\.0\\.1:${A.port},1\\n`));
  assert.match(r.stdout, new RegExp(`Target:${TARGET} Portal:127\\.0\\.0\\.2:${B.port},1\\n`));
  assert.equal([...r.stdout.matchAll(/Lun:0\s+Type:DIRECT_ACCESS/g)].length, 2, r.stdout);
});

test('both paths show the same LU designators; INQUIRY reports TPGS', async () => {
  const lu = async (url: string) => {
    const r = await run('iscsi-inq', ['-e', '1', '-c', '131', url]);
    assert.equal(r.code, 0, r.stderr);
    // Every LOGICAL_UNIT-association designator block (T10 vendor id and NAA), as libiscsi prints them.
    const blocks = r.stdout.split('DEVICE DESIGNATOR').filter((b) => /Association:\(0\) LOGICAL_UNIT/.test(b));
    assert.ok(blocks.some((b) => /Designator Type:\(3\) NAA/.test(b)), r.stdout);
    return blocks.map((b) => b.replace(/^ #\d+/, '')).sort();
  };
  assert.deepEqual(await lu(urlA()), await lu(urlB()));
  for (const url of [urlA(), urlB()]) {
    const std = await run('iscsi-inq', [url]);
    assert.equal(std.code, 0, std.stderr);
    assert.match(std.stdout, /TPGS:[123]\n/, std.stdout);
    assert.match(std.stdout, /Vendor:OUTPOST/);
  }
  // Byte-exact: same NAA on both nexuses; one TPG = one target port, so the same relative port id.
  const ca = await rawSession(A.ip, A.port, 'iqn.2026-01.test:vpd');
  const cb = await rawSession(B.ip, B.port, 'iqn.2026-01.test:vpd');
  try {
    const da = parseVpd83((await scsiPastUa(ca, INQUIRY_83, 1024)).data);
    const db = parseVpd83((await scsiPastUa(cb, INQUIRY_83, 1024)).data);
    const naa = (d: typeof da) => d.find((x) => x.assoc === 0 && x.type === 3)!.value.toString('hex');
    assert.equal(naa(da), naa(db));
    const rel = (d: typeof da) => d.find((x) => x.assoc === 1 && x.type === 4)!.value.readUInt16BE(2);
    assert.equal(rel(da), 1);
    assert.equal(rel(db), 1);
  } finally {
    ca.close();
    cb.close();
  }
});

test('data written through one path reads back through the other', async () => {
  const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0xa5 1M 2M', urlA()]);
  assert.equal(w.code, 0, w.stderr + w.stdout);
  const r = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0xa5 1M 2M', urlB()]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.doesNotMatch(r.stdout, /Pattern verification failed/);
  assert.match(r.stdout, /read 2097152\/2097152 bytes/);
});

test('libiscsi SCSI.MultipathIO: all 4 tests pass over the two paths, none skipped', async () => {
  const r = await run('iscsi-test-cu', ['-d', '-t', 'SCSI.MultipathIO', urlA(), urlB()], {}, 120_000);
  assert.match(r.stdout + r.stderr, /found matching LU device identifier for all \(2\) paths/);
  assertCunitAllPassed(r.stdout, 4);
  assert.equal(r.code, 0);
});

test('libiscsi persistent-reservation suites pass with two I_T nexuses', async () => {
  const r = await run('iscsi-test-cu', ['-d', '-t', 'SCSI.Prout*,SCSI.Prin*', urlA(), urlB()], {}, 180_000);
  const n = [...r.stdout.matchAll(/^\s*Test: /gm)].length;
  assert.ok(n >= 15, r.stdout.slice(-2000));
  assertCunitAllPassed(r.stdout, n);
  assert.equal(r.code, 0);
});

test('removing path A in the middle of a write stream on path B loses and fails nothing; A comes back and re-login works', { timeout: 300_000 }, async () => {
  // A session parked on path A, which the removal must take down.
  const parked = await rawSession(A.ip, A.port, 'iqn.2026-01.test:parked', '400000000042');
  // An open-ended stream of 256 KiB writes through path B over 48 MiB (wrapping), each with a pattern
  // derived from its index, one after another: it runs until the removal is confirmed and then
  // AFTER_REMOVAL more writes have landed, however slow the machine is.
  const SLOTS = 192;
  const AFTER_REMOVAL = 32;
  const pattern = (i: number) => (i * 7 + 1) & 0xff;
  const writer = new QemuIoStream(urlB());
  let issued = 0;
  let stopAt = Infinity;
  const bad: string[] = [];
  const stream = (async () => {
    await writer.ready();
    for (; issued < stopAt; issued++) {
      const i = issued;
      const answer = await writer.command(`write -P ${pattern(i)} ${(i % SLOTS) * 256}k 256k`);
      if (!/wrote 262144\/262144 bytes/.test(answer)) bad.push(`write ${i}: ${answer}`);
    }
  })();
  let failed: Error | undefined;
  stream.catch((e: Error) => { failed = e; }); // surfaced by the waits below, not as an unhandled rejection
  try {
    const waitIssued = async (n: number) => {
      for (let t = 0; t < 2400 && issued < n && bad.length === 0 && !failed; t++) await new Promise((r) => setTimeout(r, 25));
      if (failed) throw failed;
    };
    await waitIssued(8);
    assert.deepEqual(bad, []);
    assert.ok(issued >= 8, `write stream did not start: ${writer.log.slice(-2000)}`);
    // Remove portal A through the shell (admin API → reconcile) while B's stream keeps going.
    const before = issued;
    const del = await outpost(h.stateDir, [`/iscsi/${TARGET}/tpg1/portals`, 'delete', A.ip, String(A.port)]);
    assert.equal(del.code, 0, del.stderr);
    assert.ok(await parked.waitClosed(15_000), 'session on the removed portal stayed up');
    assert.ok(!h.agent.server.listening().some((p) => p.ip === A.ip && p.port === A.port));
    const confirmed = issued;
    stopAt = confirmed + AFTER_REMOVAL;
    await stream;
    console.log(`# writes on B: ${before} before the removal, ${confirmed - before} during it, ${issued - confirmed} after`);
    assert.deepEqual(bad, []);
    // Serial and never idle: writes completed between the delete command and its confirmation.
    assert.ok(confirmed > before, 'no write landed on B while the portal was being removed');
    assert.equal(issued, confirmed + AFTER_REMOVAL, 'the stream ran on after the removal was confirmed');
    assert.equal(await writer.quit(), 0, writer.log.slice(-2000));
    assert.equal([...writer.log.matchAll(/wrote 262144\/262144 bytes/g)].length, issued, writer.log.slice(-2000));
    assert.doesNotMatch(writer.log, /error|failed/i);
  } finally {
    stopAt = 0;
    writer.kill();
    await stream.catch(() => undefined);
  }
  const ls = await run('iscsi-ls', [`iscsi://${B.ip}:${B.port}`]);
  assert.doesNotMatch(ls.stdout, new RegExp(`127\\.0\\.0\\.1:${A.port}`));

  // Re-add path A live; the same initiator port logs in again (session reinstated cleanly) and
  // verifies through the new path the last write to every slot.
  const add = await outpost(h.stateDir, [`/iscsi/${TARGET}/tpg1/portals`, 'create', A.ip, String(A.port)]);
  assert.equal(add.code, 0, add.stderr);
  const again = await rawSession(A.ip, A.port, 'iqn.2026-01.test:parked', '400000000042');
  again.close();
  const verify: string[] = [];
  const slots = Math.min(SLOTS, issued);
  for (let s = 0; s < slots; s++) {
    const last = s + SLOTS * Math.floor((issued - 1 - s) / SLOTS);
    verify.push('-c', `read -P ${pattern(last)} ${s * 256}k 256k`);
  }
  const v = await run('qemu-io', ['-f', 'raw', ...verify, urlA()], {}, 120_000);
  assert.equal(v.code, 0, v.stderr);
  assert.doesNotMatch(v.stdout, /Pattern verification failed/);
  assert.equal([...v.stdout.matchAll(/^read 262144\/262144 bytes/gm)].length, slots);
});
