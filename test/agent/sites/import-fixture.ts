// Shared setup of the import tests: s3rver, a tgt "legacy SAN" with a CHAP-protected random image, and an
// agent (child process) with a target ready to map the importing LUN; driven with the `outpost` command line.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { outpost, spawnAgent, tempAgentDirs, type AgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import type { S3rverHandle } from '../../helpers/s3rver.js';
import { TgtDaemon } from '../../helpers/tgt.js';

export const MiB = 1024 * 1024;
export const SRC_IQN = 'iqn.2024-01.dev.outpost.test:legacy-san';
export const CHAP = { user: 'importer', password: 'legacy-san-secret1' };
export const TARGET = 'iqn.2024-01.dev.outpost.test:imported';

export interface Site {
  dirs: AgentDirs;
  port: number;
  agent: SpawnedAgent;
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** The figures of `info` (live section) as label → value. */
  info(name: string): Promise<Record<string, string>>;
  lunUrl(): string;
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function startSource(dir: string, bytes: number): Promise<{ tgt: TgtDaemon; image: Buffer; path: string }> {
  const image = randomBytes(bytes);
  const path = join(dir, `src-${bytes}.img`);
  await writeFile(path, image);
  const tgt = await TgtDaemon.start({ workDir: dir });
  await tgt.addTarget(1, SRC_IQN, [{ path }], CHAP);
  return { tgt, image, path };
}

export function sourceUrl(tgt: TgtDaemon, secret = CHAP.password): string {
  return `iscsi://${CHAP.user}%${secret}@127.0.0.1:${tgt.port}/${SRC_IQN}/1`;
}

export async function startSite(s3: S3rverHandle): Promise<Site> {
  const port = await freePort();
  const dirs = await tempAgentDirs({
    storage_objects: [],
    targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true,
      attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0 },
      luns: [], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  });
  const env = { ...s3.env, OUTPOST_LOG_FORMAT: 'json' };
  const site: Site = {
    dirs, port,
    agent: await spawnAgent({ dirs, env }),
    cli: (args) => outpost(dirs.stateDir, args, env),
    async info(name) {
      const r = await site.cli([`/backstores/object/${name}`, 'info']);
      assert.equal(r.code, 0, r.stderr);
      const out: Record<string, string> = {};
      for (const line of r.stdout.split('\n')) {
        const m = /^\s*([a-z0-9 _()]+):\s(.*)$/i.exec(line);
        if (m) out[m[1]!.trim()] = m[2]!.trim();
      }
      return out;
    },
    lunUrl: () => `iscsi://127.0.0.1:${port}/${TARGET}/0`,
    async restart() {
      site.agent = await spawnAgent({ dirs, env });
    },
    async cleanup() {
      await site.agent.cleanup();
    },
  };
  return site;
}

/** Creates the importing LUN and maps it as LUN 0 of the site's target. */
export async function createImport(site: Site, s3: S3rverHandle, o: { name: string; size: number; url: string; rate?: string; prefix?: string; extra?: string[] }): Promise<{ code: number | null; out: string }> {
  // --no-wait: the shell would otherwise follow the import's job to its end before returning.
  const r = await site.cli(['--no-wait', '/backstores/object', 'create', o.name, String(o.size), `bucket=${s3.bucket}`, `prefix=${o.prefix ?? `${o.name}/`}`, `endpoint=${s3.endpoint}`,
    'force_path_style=true', 'cache_size=64M', `import=${o.url}`, ...(o.rate ? [`import_rate=${o.rate}`] : []), ...(o.extra ?? [])]);
  if (r.code !== 0) return { code: r.code, out: r.stdout + r.stderr };
  const l = await site.cli([`/iscsi/${TARGET}/tpg1/luns`, 'create', `/backstores/object/${o.name}`]);
  assert.equal(l.code, 0, l.stdout + l.stderr);
  return { code: 0, out: r.stdout + r.stderr };
}

export function run(cmd: string, args: string[], timeoutMs = 120_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d));
    p.stderr.on('data', (d: Buffer) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('close', (code) => { clearTimeout(t); resolve({ code, out }); });
  });
}

export async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
