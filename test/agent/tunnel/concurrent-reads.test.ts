// Many reads in flight through a relay, each verified: 256 concurrent 128 KiB reads (qemu-io aio_read
// with a pattern per region) come back with their own data. The fabric recycles pooled read buffers
// when a write completes; a tunnel that completed writes before the bytes left would hand out
// overwritten data here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startAgentInProcess, type InProcessAgent } from '../../helpers/agent.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { lunUrl, multipathConfig } from '../multipath/helpers.js';
import { spawnRelay, tempDir, until, writeToken, type SpawnedRelay } from '../../gateway/relay/helpers.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let relay: SpawnedRelay;
let h: InProcessAgent;

before(async () => {
  tmp = await tempDir();
  const token = randomBytes(24).toString('hex');
  relay = await spawnRelay({ tokenFile: await writeToken(tmp.dir, 'relay-tokens', [token]) });
  const config = multipathConfig([{ tag: 1, portals: [] }]) as { targets: Array<{ tpgs: Array<Record<string, unknown>> }> };
  config.targets[0]!.tpgs[0]!.outpost_tunnels = [{ url: relay.url, advertise: `${relay.host}:${relay.portal}`, token_file: await writeToken(tmp.dir, 'agent-token', [token]) }];
  h = await startAgentInProcess({ config });
  assert.ok(await until(() => h.agent.tunnels.all()[0]?.state === 'connected', 10_000));
});

after(async () => {
  await h?.cleanup().catch(() => {}); // the relays below are stopped even so
  await relay?.stop();
  await tmp?.cleanup();
});

test('256 concurrent 128 KiB reads through the relay each return their own region', async () => {
  const url = lunUrl(relay.host, relay.portal);
  const regions = 64; // 8 MiB of distinct patterns
  const pat = (i: number) => (i * 37 + 11) & 0xff;
  const w: string[] = [];
  for (let i = 0; i < regions; i++) w.push('-c', `write -P ${pat(i)} ${i * 128}k 128k`);
  const wr = await run('qemu-io', ['-f', 'raw', ...w, url], {}, 60_000);
  assert.equal(wr.code, 0, wr.stderr + wr.stdout);
  for (let round = 0; round < 4; round++) {
    const r: string[] = [];
    for (let k = 0; k < 256; k++) {
      const i = (k * 17 + round) % regions;
      r.push('-c', `aio_read -P ${pat(i)} ${i * 128}k 128k`);
    }
    r.push('-c', 'aio_flush');
    const rd = await run('qemu-io', ['-f', 'raw', ...r, url], {}, 60_000);
    assert.equal(rd.code, 0, rd.stderr + rd.stdout);
    assert.doesNotMatch(rd.stdout + rd.stderr, /Pattern verification failed|error/i, (rd.stdout + rd.stderr).slice(0, 2000));
    assert.equal([...rd.stdout.matchAll(/^read 131072\/131072 bytes/gm)].length, 256, rd.stdout.slice(-1000));
  }
});
