// A tunnel over wss://: the relay serves TLS with its certificate; an agent that pins the relay's CA
// (ca_file) connects and carries iSCSI, one that trusts only the system store refuses the self-signed
// relay and keeps retrying with the certificate error as its last error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startAgentInProcess, type InProcessAgent } from '../../helpers/agent.js';
import { run } from '../../helpers/iscsi-fixture.js';
import { lunUrl, multipathConfig } from '../multipath/helpers.js';
import { spawnRelay, tempDir, until, writeToken, type SpawnedRelay } from '../../gateway/relay/helpers.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let relay: SpawnedRelay;
let h: InProcessAgent;

before(async () => {
  tmp = await tempDir();
  const cert = join(tmp.dir, 'relay.pem');
  const key = join(tmp.dir, 'relay.key');
  await promisify(execFile)('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=outpost-test-relay', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
  const token = randomBytes(24).toString('hex');
  const agentToken = await writeToken(tmp.dir, 'agent-token', [token]);
  relay = await spawnRelay({ tokenFile: await writeToken(tmp.dir, 'relay-tokens', [token]), extra: ['--tls-cert', cert, '--tls-key', key] });
  const config = multipathConfig([{ tag: 1, portals: [] }, { tag: 2, portals: [] }]) as { targets: Array<{ tpgs: Array<Record<string, unknown>> }> };
  const url = `wss://127.0.0.1:${relay.listen}/`;
  config.targets[0]!.tpgs[0]!.outpost_tunnels = [{ url, advertise: `${relay.host}:${relay.portal}`, token_file: agentToken, ca_file: cert }];
  config.targets[0]!.tpgs[1]!.outpost_tunnels = [{ url, advertise: '127.0.0.9:3260', token_file: agentToken }];
  h = await startAgentInProcess({ config });
});

after(async () => {
  await h?.cleanup().catch(() => {}); // the relays below are stopped even so
  await relay?.stop();
  await tmp?.cleanup();
});

test('the tunnel pinning the relay CA connects over wss:// and carries a login; the unpinned one is refused', async () => {
  const st = () => h.agent.tunnels.all().sort((a, b) => a.tpg - b.tpg);
  assert.ok(await until(() => st()[0]?.state === 'connected', 10_000), JSON.stringify(st()));
  const r = await run('iscsi-inq', [lunUrl(relay.host, relay.portal)]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.ok(await until(() => /self[- ]signed|certificate/i.test(st()[1]?.lastError ?? ''), 10_000), JSON.stringify(st()));
  assert.notEqual(st()[1]!.state, 'connected');
});
