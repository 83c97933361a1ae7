// Test helper for the sites suites: agents at two "sites" (own state dirs and caches) on one s3rver bucket, each
// exporting object LUN vol1 on a loopback portal, plus the shell and lease views the tests assert on.
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { S3Client, GetObjectCommand } from '@aws-sdk/client-s3';
import { outpost, spawnAgent, tempAgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';

export const MiB = 1024 * 1024;
export const TARGET = 'iqn.2003-01.org.outpost.test:sites';
export const INITIATOR = 'iqn.2003-01.org.outpost.test:sites-host';

export interface Site { agent: SpawnedAgent; port: number; opts: string; url: string }

export interface Bucket {
  s3: S3rverHandle;
  client: S3Client;
  agents: SpawnedAgent[];
  /** An agent whose saveconfig.json exports vol1 (object, on `prefix`) as LUN 0 of TARGET; `so` overrides the backstore's keys. */
  site(prefix: string, so?: Record<string, unknown>): Promise<Site>;
  /** An agent with an empty configuration and a portal-ready target (the LUN is created through the shell later). */
  emptySite(): Promise<Site>;
  lease(prefix: string): Promise<{ holder: string; epoch: number; released: boolean; expires_ms: number }>;
  dispose(): Promise<void>;
}

export async function bucket(): Promise<Bucket> {
  const s3 = await startS3rver();
  const client = new S3Client({ endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  const agents: SpawnedAgent[] = [];
  const target = (port: number, luns: object[]) => [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true,
    attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 },
    luns, portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }];
  const finish = async (config: object, port: number): Promise<Site> => {
    const agent = await spawnAgent({ dirs: await tempAgentDirs(config), env: { ...s3.env } });
    agents.push(agent);
    return { agent, port, opts: `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=0,initiator-name=${INITIATOR}`,
      url: `iscsi://127.0.0.1:${port}/${TARGET}/0` };
  };
  return {
    s3, client, agents,
    async site(prefix, so = {}) {
      const port = await freePort();
      return finish({
        storage_objects: [{ plugin: 'object', name: 'vol1', size: 64 * MiB, wwn: '6001405c0ffee001', bucket: s3.bucket, prefix, endpoint: s3.endpoint,
          force_path_style: true, cache_size: 16 * MiB, lease_ms: 12_000, lease_settle_ms: 2000, read_timeout_ms: 2000, upload_delay_ms: 50,
          commit_interval_ms: 200, ...so }],
        targets: target(port, [{ index: 0, storage_object: '/backstores/object/vol1' }]),
      }, port);
    },
    async emptySite() {
      const port = await freePort();
      return finish({ storage_objects: [], targets: target(port, []) }, port);
    },
    async lease(prefix) {
      const r = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: `${prefix}lease.json` }));
      return JSON.parse(await r.Body!.transformToString()) as { holder: string; epoch: number; released: boolean; expires_ms: number };
    },
    async dispose() {
      for (const a of agents) await a.cleanup();
      client.destroy();
      await s3.dispose();
    },
  };
}

export function run(cmd: string, args: string[], timeoutMs = 300_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('exit', (code) => { clearTimeout(timer); resolve({ code, out }); });
  });
}

/** `outpost` against a running agent: exit code and output. */
export async function sh(a: SpawnedAgent, env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number | null; out: string }> {
  const r = await outpost(a.stateDir, args, env);
  return { code: r.code, out: r.stdout + r.stderr };
}

/** The live figures of `/backstores/object/vol1 info` (label → text). */
export async function info(a: SpawnedAgent, env: NodeJS.ProcessEnv): Promise<Map<string, string>> {
  const r = await outpost(a.stateDir, ['/backstores/object/vol1', 'info'], env);
  assert.equal(r.code, 0, r.stderr);
  return new Map(r.stdout.split('\n').filter((l) => l.startsWith('  ') && l.includes(': ')).map((l) => {
    const i = l.indexOf(': ');
    return [l.slice(2, i), l.slice(i + 2)] as [string, string];
  }));
}

/** Until the writer has every acknowledged byte named by a root in the bucket. */
export async function settled(a: SpawnedAgent, env: NodeJS.ProcessEnv): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const i = await info(a, env);
    if (/^0 bytes/.test(i.get('dirty bytes') ?? '') && i.get('uploads in flight') === '0' && i.get('oldest dirty age (RPO)') === '0 ms') return;
    if (Date.now() > deadline) throw new Error(`did not settle: ${JSON.stringify([...i])}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
