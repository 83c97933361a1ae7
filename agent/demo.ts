// `npm start`: a whole Outpost site on one machine with no account — an embedded S3 endpoint (s3rver),
// the Node gateway, and an agent enrolled with it serving a fileio LUN and an S3-backed LUN on
// 127.0.0.1:3260. State lives in ./.outpost-demo (OUTPOST_DEMO_DIR) and survives restarts.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { createLogger } from './lib/log.js';
import { startAgent } from './main.js';
import { startControlLink } from './control/link.js';
import { startGateway } from '../gateway/node/main.js';
import { Relay } from '../gateway/relay/relay.js';

const dir = resolve(process.env.OUTPOST_DEMO_DIR ?? '.outpost-demo');
const host = '127.0.0.1';
const iscsiPort = Number(process.env.OUTPOST_DEMO_ISCSI_PORT ?? 3260);
const gatewayPort = Number(process.env.OUTPOST_DEMO_GATEWAY_PORT ?? 7080);
const s3Port = Number(process.env.OUTPOST_DEMO_S3_PORT ?? 4569);
const relayPort = Number(process.env.OUTPOST_DEMO_RELAY_PORT ?? 3261); // initiators' portal at the relay
const relayListen = Number(process.env.OUTPOST_DEMO_RELAY_LISTEN ?? 7081); // where the agent dials the relay
const target = 'iqn.2026-11.org.outpost.demo:disk1';
const client = 'iqn.2026-11.org.outpost.demo:client';
const bucket = 'outpost-demo';
const GiB = 1024 ** 3;

/** Reads a secret kept in the demo dir, creating it on first start. */
async function secret(name: string, make: () => string): Promise<string> {
  const p = join(dir, name);
  if (existsSync(p)) return (await readFile(p, 'utf8')).trim();
  const v = make();
  await writeFile(p, v + '\n', { mode: 0o600 });
  return v;
}

/** The demo's tunnel: tpg1 is also reachable through the loopback relay (docs/tunnels.md). */
function demoTunnel() {
  return { url: `ws://${host}:${relayListen}/`, advertise: `${host}:${relayPort}`, token_file: join(dir, 'relay-token') };
}

function demoConfig() {
  return {
    fabric_modules: [],
    storage_objects: [
      { name: 'disk1', plugin: 'fileio', dev: join(dir, 'disk1.img'), size: GiB, write_back: true, wwn: randomUUID(), attributes: { block_size: 512 } },
      {
        name: 'vol1', plugin: 'object', size: GiB, wwn: randomUUID(), bucket, prefix: 'volumes/vol1',
        endpoint: `http://${host}:${s3Port}`, region: 'us-east-1', force_path_style: true,
        cache_dir: join(dir, 'cache', 'vol1'), cache_size: 256 * 1024 * 1024, attributes: { block_size: 512 },
      },
    ],
    targets: [
      {
        fabric: 'iscsi', wwn: target,
        tpgs: [
          {
            tag: 1, enable: true,
            attributes: { authentication: 0, generate_node_acls: 0, demo_mode_write_protect: 1 },
            parameters: {},
            luns: [
              { index: 0, storage_object: '/backstores/fileio/disk1' },
              { index: 1, storage_object: '/backstores/object/vol1' },
            ],
            node_acls: [
              { node_wwn: client, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }, { index: 1, tpg_lun: 1, write_protect: false }] },
            ],
            portals: [{ ip_address: host, port: iscsiPort }],
            outpost_tunnels: [demoTunnel()],
          },
        ],
      },
    ],
  };
}

async function startS3(): Promise<ChildProcess> {
  const s3rver = createRequire(import.meta.url).resolve('s3rver');
  const script = `
    const S3rver = require(${JSON.stringify(s3rver)});
    new S3rver({ address: ${JSON.stringify(host)}, port: ${s3Port}, silent: true, directory: ${JSON.stringify(join(dir, 's3'))},
      configureBuckets: [{ name: ${JSON.stringify(bucket)}, configs: [] }] })
      .run().then(() => process.stdout.write('ready\\n'), (e) => { console.error(e.message); process.exit(1); });
    process.stdin.on('end', () => process.exit(0)).resume();`;
  // s3rver's ListObjectsV2 continuation tokens use DES, which OpenSSL 3 keeps in its legacy provider.
  // Its own process group: a Ctrl-C at the terminal goes to the whole foreground group, and the bucket
  // must outlive the agent's final flush and lease release. It exits when our end of its stdin closes,
  // so it cannot outlive us either, however we end.
  const child = spawn(process.execPath, ['--openssl-legacy-provider', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  await new Promise<void>((ok, fail) => {
    child.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) ok(); });
    child.once('exit', (code) => fail(new Error(`the embedded S3 endpoint (s3rver) exited with ${code}; is port ${s3Port} free?`)));
  });
  return child;
}

async function main(): Promise<void> {
  await mkdir(join(dir, 's3'), { recursive: true, mode: 0o700 });
  const log = createLogger('outpost-demo', process.env.OUTPOST_LOG_LEVEL ?? 'warn');
  process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER';
  process.env.AWS_REGION ??= 'us-east-1';
  // The SDK warns that releases after January 2027 need Node 22; the lockfile pins one that runs on 20.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

  const s3 = await startS3();
  const adminToken = process.env.OUTPOST_ADMIN_TOKEN ?? (await secret('admin-token', () => randomBytes(18).toString('base64url')));
  const secretKey = await secret('gateway-secret-key', () => randomBytes(32).toString('base64url'));
  const gateway = await startGateway({ dataDir: join(dir, 'gateway'), port: gatewayPort, host, adminToken, secretKey, logger: log });

  const tokenFile = join(dir, 'agent-token');
  const auth = { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' };
  let agentToken = existsSync(tokenFile) ? (await readFile(tokenFile, 'utf8')).trim() : '';
  let agentId: string | undefined;
  if (!agentToken) {
    const res = await fetch(`${gateway.url}/v1/agents`, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'demo-site' }) });
    if (res.status !== 201) throw new Error(`enrolling the demo agent failed: ${res.status} ${await res.text()}`);
    const enrolled = (await res.json()) as { id: string; token: string };
    agentToken = enrolled.token;
    agentId = enrolled.id;
    await writeFile(tokenFile, agentToken + '\n', { mode: 0o600 });
  } else {
    const res = await fetch(`${gateway.url}/v1/agents`, { headers: auth });
    agentId = ((await res.json()) as { agents: { id: string; name: string }[] }).agents.find((a) => a.name === 'demo-site')?.id;
    if (!agentId) throw new Error(`the demo agent is not enrolled on the gateway any more; remove ${tokenFile} to enrol it again`);
  }
  // The agent gets policy only for the targets assigned to it on the gateway (idempotent on restarts).
  const assigned = await fetch(`${gateway.url}/v1/agents/${agentId}/targets/${target}`, { method: 'PUT', headers: auth });
  if (assigned.status !== 200) throw new Error(`assigning ${target} to the demo agent failed: ${assigned.status} ${await assigned.text()}`);

  const configPath = join(dir, 'saveconfig.json');
  if (!existsSync(configPath)) await writeFile(configPath, JSON.stringify(demoConfig(), null, 2) + '\n');
  await secret('relay-token', () => randomBytes(24).toString('hex')); // one line: the relay's token file and the agent's
  const relay = new Relay({ portal: { host, port: relayPort }, listen: { host, port: relayListen }, tokenFile: join(dir, 'relay-token'), log });
  await relay.start();
  const stateDir = join(dir, 'state');
  const agent = await startAgent({ configPath, stateDir, log });
  const agentVersion = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  const link = await startControlLink({ url: gateway.url, token: agentToken, stateDir, agent, log, agentVersion });
  agent.setGatewayLink(link);

  // The commands below work once the agent's first tunnel connections are up.
  for (let i = 0; i < 50 && !agent.tunnels.all().every((t) => t.state === 'connected'); i++) await new Promise((r) => setTimeout(r, 100));
  const portal = `${host}:${iscsiPort}`;
  process.stdout.write(`
Outpost demo is running (state in ${dir}).

  iSCSI target  ${target}
  portal        ${portal}   LUN 0: fileio ${join(dir, 'disk1.img')} (1 GiB)
                            LUN 1: object vol1 in s3://${bucket}/volumes/vol1 via ${`http://${host}:${s3Port}`} (1 GiB, 256 MiB cache)
  allowed       ${client}
  gateway       ${gateway.url}   admin token: ${adminToken}

Connect with libiscsi:
  iscsi-ls -s -i ${client} iscsi://${portal}
  iscsi-readcapacity16 -i ${client} iscsi://${portal}/${target}/0

Connect with open-iscsi (set InitiatorName=${client} in /etc/iscsi/initiatorname.iscsi):
  iscsiadm -m discovery -t sendtargets -p ${portal}
  iscsiadm -m node -T ${target} -p ${portal} --login

Let another initiator in, with CHAP, through the gateway (the target is assigned to this agent,
as with: curl -X PUT -H 'Authorization: Bearer ${adminToken}' ${gateway.url}/v1/agents/${agentId}/targets/${target}):
  curl -X PUT -H 'Authorization: Bearer ${adminToken}' -H 'content-type: application/json' \\
    ${gateway.url}/v1/acls/${target}/iqn.2026-11.org.outpost.demo:laptop \\
    -d '{"chap":{"userid":"laptop","password":"laptop-secret-01"},"mapped_luns":[{"index":0,"tpg_lun":0,"write_protect":false}]}'
  iscsi-inq -i iqn.2026-11.org.outpost.demo:laptop iscsi://laptop%laptop-secret-01@${portal}/${target}/0

Through the relay (the agent dialed out to it; a path for initiators that cannot reach the site):
  iscsi-ls -s -i ${client} iscsi://${host}:${relayPort}
  iscsiadm -m discovery -t sendtargets -p ${host}:${relayPort}
  npx outpost --state-dir ${stateDir} /iscsi/${target}/tpg1/tunnels ls

Manage it like targetcli:   npx outpost --state-dir ${stateDir} ls
Stop with Ctrl-C.
`);

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('\nStopping: flushing LUNs and writing the final manifest…\n');
    await link.close().catch(() => {});
    await agent.stop().catch((e: unknown) => log.error({ err: e }, 'agent stop failed'));
    await gateway.close().catch(() => {});
    await relay.close().catch(() => {});
    s3.kill('SIGTERM');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
}

main().catch((err: unknown) => {
  console.error(`outpost demo: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
