// Two relays (two processes, on 127.0.0.1 and 127.0.0.2), one tunnel each, as two TPGs of one target:
// both paths are the same LU with distinct relative target ports, libiscsi's MultipathIO suite passes
// across them, and killing relay A under a writer on relay B loses nothing; A restarted is usable again
// without touching the agent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { startAgentInProcess, type InProcessAgent } from '../../helpers/agent.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { INQUIRY_83, RTPG_CDB, assertCunitAllPassed, lunUrl, multipathConfig, parseRtpg, parseVpd83, rawSession, scsiPastUa } from '../multipath/helpers.js';
import { spawnRelay, tempDir, until, writeToken, type SpawnedRelay } from '../../gateway/relay/helpers.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let relayA: SpawnedRelay;
let relayB: SpawnedRelay;
let h: InProcessAgent;
const urlA = () => lunUrl(relayA.host, relayA.portal);
const urlB = () => lunUrl(relayB.host, relayB.portal);

before(async () => {
  tmp = await tempDir();
  const token = randomBytes(24).toString('hex');
  const relayTokens = await writeToken(tmp.dir, 'relay-tokens', [token]);
  const agentToken = await writeToken(tmp.dir, 'agent-token', [token]);
  relayA = await spawnRelay({ host: '127.0.0.1', tokenFile: relayTokens });
  relayB = await spawnRelay({ host: '127.0.0.2', tokenFile: relayTokens });
  // Relay B stands for a backup uplink: its TPG is in an active/non-optimized ALUA group.
  const config = multipathConfig([{ tag: 1, portals: [], aluaGroup: 'fibre' }, { tag: 2, portals: [], aluaGroup: 'lte' }], [
    { name: 'fibre', tg_pt_gp_id: 10, alua_access_state: 0, alua_access_type: 1, preferred: 1 },
    { name: 'lte', tg_pt_gp_id: 20, alua_access_state: 1, alua_access_type: 1, preferred: 0 },
  ]) as { targets: Array<{ tpgs: Array<Record<string, unknown>> }> };
  const [t1, t2] = config.targets[0]!.tpgs as [Record<string, unknown>, Record<string, unknown>];
  t1.outpost_tunnels = [{ url: relayA.url, advertise: `${relayA.host}:${relayA.portal}`, token_file: agentToken }];
  t2.outpost_tunnels = [{ url: relayB.url, advertise: `${relayB.host}:${relayB.portal}`, token_file: agentToken }];
  h = await startAgentInProcess({ config });
  assert.ok(await until(() => h.agent.tunnels.all().every((t) => t.state === 'connected'), 10_000), JSON.stringify(h.agent.tunnels.all()));
});

after(async () => {
  await h?.cleanup().catch(() => {}); // the relays below are stopped even so
  await relayA?.stop();
  await relayB?.stop();
  await tmp?.cleanup();
});

/** libiscsi's designator blocks from `iscsi-inq -e 1 -c 131` (page 0x83; it reads the page number in decimal). */
async function designators(url: string): Promise<string[]> {
  const r = await run('iscsi-inq', ['-e', '1', '-c', '131', url]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  return r.stdout.split('DEVICE DESIGNATOR').slice(1).map((b) => b.replace(/^ #\d+/, ''));
}

test('both relays lead to the same LU (NAA) with distinct relative target ports', async () => {
  const a = await designators(urlA());
  const b = await designators(urlB());
  const naa = (d: string[]) => d.filter((x) => /LOGICAL_UNIT/.test(x) && /\(3\) NAA/.test(x));
  assert.equal(naa(a).length, 1, a.join('\n'));
  assert.deepEqual(naa(a), naa(b));
  // libiscsi prints binary designators empty; the target port names (…,t,0x0001 / …,t,0x0002) differ.
  const portName = (d: string[]) => /Designator:\[(.*,t,0x[0-9a-f]+)\]/.exec(d.find((x) => /TARGET_PORT\n/.test(x) && /SCSI_NAME_STRING/.test(x)) ?? '')?.[1];
  assert.ok(portName(a) && portName(b), a.join('\n'));
  assert.notEqual(portName(a), portName(b));
  // Byte-exact through each relay: the relative target port designator is 1 on A's TPG, 2 on B's.
  const rel: number[] = [];
  for (const r of [relayA, relayB]) {
    const c = await rawSession(r.host, r.portal, 'iqn.2026-01.test:vpd');
    try {
      const d = parseVpd83((await scsiPastUa(c, INQUIRY_83, 1024)).data);
      rel.push(d.find((x) => x.assoc === 1 && x.type === 4)!.value.readUInt16BE(2));
    } finally {
      c.close();
    }
  }
  assert.deepEqual(rel, [1, 2]);
});

test('RTPG through either relay reports the fibre group active/optimized and the LTE group active/non-optimized', async () => {
  for (const r of [relayA, relayB]) {
    const c = await rawSession(r.host, r.portal, 'iqn.2026-01.test:rtpg');
    try {
      const res = await scsiPastUa(c, RTPG_CDB, 1024);
      assert.equal(res.status, 0);
      assert.deepEqual(parseRtpg(res.data).sort((x, y) => x.id - y.id), [
        { id: 10, state: 0, preferred: true, ports: [1] },
        { id: 20, state: 1, preferred: false, ports: [2] },
      ]);
    } finally {
      c.close();
    }
  }
});

test('libiscsi SCSI.MultipathIO passes with one path through each relay, none skipped', async () => {
  const r = await run('iscsi-test-cu', ['-d', '-t', 'SCSI.MultipathIO', urlA(), urlB()], {}, 120_000);
  assert.match(r.stdout + r.stderr, /found matching LU device identifier for all \(2\) paths/);
  assertCunitAllPassed(r.stdout, 4);
  assert.equal(r.code, 0);
});

test('relay A killed under a writer on relay B: every write succeeds; A restarted works again within 35 s', async (t) => {
  const parked = await rawSession(relayA.host, relayA.portal, 'iqn.2026-01.test:parked-a');
  // 1536 writes of 256 KiB through B, cycling over 48 MiB; the pattern of write i is derived from i.
  const n = 1536;
  const span = 192;
  const cmds: string[] = [];
  for (let i = 0; i < n; i++) cmds.push('-c', `write -P ${(i * 7 + 1) & 0xff} ${(i % span) * 256}k 256k`);
  const writer = spawn('qemu-io', ['-f', 'raw', ...cmds, urlB()], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  writer.stdout.on('data', (d: Buffer) => (out += d.toString()));
  writer.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => writer.once('exit', (c) => r(c)));
  try {
    for (let t = 0; t < 400 && !/wrote/.test(out); t++) await new Promise((r) => setTimeout(r, 25));
    assert.match(out, /wrote/, 'write stream did not start');
    await relayA.stop('SIGKILL');
    assert.ok(await parked.waitClosed(5000), 'the session through relay A outlived the relay');
    assert.equal(writer.exitCode, null, 'the write stream ended before relay A died (test too fast to mean anything)');
    assert.equal(await exited, 0, out.slice(-2000));
  } finally {
    if (writer.exitCode === null) writer.kill('SIGKILL');
    parked.close();
  }
  assert.equal([...out.matchAll(/^wrote 262144\/262144 bytes/gm)].length, n, out.slice(-2000));
  assert.doesNotMatch(out, /error|failed/i);

  const t0 = Date.now();
  relayA = await relayA.restart();
  const back = await until(async () => (await run('iscsi-inq', [urlA()], {}, 10_000)).code === 0, 35_000, 250);
  assert.ok(back, `no login through the restarted relay A within 35 s: ${JSON.stringify(h.agent.tunnels.all())}`);
  const took = Date.now() - t0;
  assert.ok(took < 35_000, `took ${took} ms`);
  t.diagnostic(`login through restarted relay A after ${took} ms; ${n} writes through B`);
  // What B wrote reads back through the restarted A: the last write at each offset.
  const verify: string[] = [];
  for (let j = 0; j < span; j++) verify.push('-c', `read -P ${((n - span + j) * 7 + 1) & 0xff} ${j * 256}k 256k`);
  const v = await run('qemu-io', ['-f', 'raw', ...verify, urlA()], {}, 60_000);
  assert.equal(v.code, 0, v.stderr);
  assert.doesNotMatch(v.stdout, /Pattern verification failed/);
  assert.equal([...v.stdout.matchAll(/^read 262144\/262144 bytes/gm)].length, span);
});
