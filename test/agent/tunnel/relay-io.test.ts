// One tunnel through one relay on loopback (docs/tunnels.md): discovery through the relay answers only the
// relay's advertised portal, libiscsi logs in through it, and qemu-img moves 64 MiB of random data both
// ways intact. Real relay process, real agent, real initiators.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startAgentInProcess, type InProcessAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { TARGET, lunUrl, multipathConfig } from '../multipath/helpers.js';
import { spawnRelay, tempDir, until, writeToken, type SpawnedRelay } from '../../gateway/relay/helpers.js';

const LAN = { ip: '127.0.0.3', port: 0 };
let tmp: Awaited<ReturnType<typeof tempDir>>;
let relay: SpawnedRelay;
let h: InProcessAgent;

before(async () => {
  tmp = await tempDir();
  const token = randomBytes(24).toString('hex');
  const relayTokens = await writeToken(tmp.dir, 'relay-tokens', ['# agents', token]);
  const agentToken = await writeToken(tmp.dir, 'agent-token', [token]);
  relay = await spawnRelay({ tokenFile: relayTokens });
  LAN.port = await freePort(LAN.ip);
  const config = multipathConfig([{ tag: 1, portals: [LAN] }]) as { targets: Array<{ tpgs: Array<Record<string, unknown>> }> };
  config.targets[0]!.tpgs[0]!.outpost_tunnels = [{ url: relay.url, advertise: `${relay.host}:${relay.portal}`, token_file: agentToken }];
  h = await startAgentInProcess({ config });
  assert.ok(await until(() => h.agent.tunnels.all()[0]?.state === 'connected', 10_000), JSON.stringify(h.agent.tunnels.all()));
});

after(async () => {
  await h?.cleanup().catch(() => {}); // the relays below are stopped even so
  await relay?.stop();
  await tmp?.cleanup();
});

test('discovery through the relay lists only the relay portal, never the agent LAN portal', async () => {
  const r = await run('iscsi-ls', ['-s', `iscsi://${relay.host}:${relay.portal}`]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const portals = [...r.stdout.matchAll(/Portal:(\S+)/g)].map((m) => m[1]);
  assert.deepEqual(portals, [`${relay.host}:${relay.portal},1`], r.stdout);
  assert.match(r.stdout, new RegExp(`Target:${TARGET} `));
  assert.match(r.stdout, /Lun:0\s+Type:DIRECT_ACCESS/);
  // The LAN portal itself still answers with the LAN address (tunnels change nothing there).
  const lan = await run('iscsi-ls', ['-s', `iscsi://${LAN.ip}:${LAN.port}`]);
  assert.equal(lan.code, 0, lan.stderr);
  assert.deepEqual([...lan.stdout.matchAll(/Portal:(\S+)/g)].map((m) => m[1]), [`${LAN.ip}:${LAN.port},1`]);
});

test('iscsi-inq through the relay reaches the LU', async () => {
  const r = await run('iscsi-inq', [lunUrl(relay.host, relay.portal)]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /Vendor:OUTPOST/);
});

test('qemu-img writes 64 MiB of random data through the relay and reads it back identical', async () => {
  const src = join(tmp.dir, 'src.img');
  const back = join(tmp.dir, 'back.img');
  const data = randomBytes(64 << 20);
  await writeFile(src, data);
  const url = lunUrl(relay.host, relay.portal);
  const w = await run('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, url], {}, 120_000);
  assert.equal(w.code, 0, w.stderr + w.stdout);
  const r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', url, back], {}, 120_000);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  assert.equal(sha(await readFile(back)), sha(data));
  const s = h.agent.tunnels.all()[0]!;
  assert.ok(s.rxBytes > 64 << 20 && s.txBytes > 64 << 20, JSON.stringify(s));
});
