// Shared setup of the import tests: s3rver, a tgt "legacy SAN" with a CHAP-protected random image, and an
// agent (child process) with a target ready to map the importing LUN; driven with the `outpost` command line.
import { before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outpost, spawnAgent, tempAgentDirs, type AgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { TGTD, TgtDaemon } from '../../helpers/tgt.js';

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

/** Why the import tests cannot run here (tgt or qemu-img missing), or false. */
export const SKIP: string | false = (!existsSync(TGTD) && 'tgt not installed') || (spawnSync('qemu-img', ['--version']).status !== 0 && 'qemu-img not installed');

/**
 * Registers the file's before/after hooks: a temp dir and one s3rver for its tests (nothing when `skip`).
 * `o.setup` runs once both exist (top-level before hooks run concurrently, so a file's own cannot wait for
 * these); `o.stopFirst` runs at the end before both go.
 */
export function importSuite(tag: string, skip: string | false = SKIP,
  o: { setup?: (dir: string, s3: S3rverHandle) => Promise<void>; stopFirst?: () => Promise<void> } = {}): { dir(): string; s3(): S3rverHandle } {
  let dir = '';
  let s3: S3rverHandle | undefined;
  before(async () => {
    if (skip) return;
    dir = await mkdtemp(join(tmpdir(), `outpost-${tag}-`));
    s3 = await startS3rver();
    await o.setup?.(dir, s3);
  });
  after(async () => {
    await o.stopFirst?.();
    await s3?.dispose();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  return { dir: () => dir, s3: () => s3! };
}

export interface Source { tgt: TgtDaemon; image: Buffer; path: string }

/** A tgt source of `size` random bytes and an agent; `fn` runs with both; both are stopped after (src.tgt as it is then). */
export async function withSourceAndSite(dir: string, s3: S3rverHandle, size: number, fn: (src: Source, site: Site) => Promise<void>): Promise<void> {
  const src = await startSource(dir, size);
  const site = await startSite(s3).catch(async (e: unknown) => { await src.tgt.stop(); throw e; });
  try {
    await fn(src, site);
  } finally {
    await site.cleanup();
    await src.tgt.stop();
  }
}

/** Waits until `info` of `name` says the import is done. */
export async function waitImported(site: Site, name: string, timeoutMs = 180_000): Promise<Record<string, string>> {
  return waitFor(`${name} to finish importing`, timeoutMs, async () => {
    const i = await site.info(name);
    return /done/.test(i['import state'] ?? '') ? i : undefined;
  });
}

/** The source LUN's bytes as the SAN serves them (qemu-img over iSCSI with CHAP, not the image file). */
export async function readSource(tgt: TgtDaemon, dir: string, size: number): Promise<Buffer> {
  const out = join(dir, `source-read-${tgt.port}.img`);
  const r = await run('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', sourceUrl(tgt), out]);
  assert.equal(r.code, 0, r.out);
  const b = await readFile(out);
  assert.equal(b.length, size);
  return b;
}

export async function startSource(dir: string, bytes: number): Promise<Source> {
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
export async function createImport(site: Site, s3: S3rverHandle, o: { name: string; size: number; url: string; rate?: string; prefix?: string; extra?: string[]; endpoint?: string }): Promise<{ code: number | null; out: string }> {
  // --no-wait: the shell would otherwise follow the import's job to its end before returning.
  const r = await site.cli(['--no-wait', '/backstores/object', 'create', o.name, String(o.size), `bucket=${s3.bucket}`, `prefix=${o.prefix ?? `${o.name}/`}`, `endpoint=${o.endpoint ?? s3.endpoint}`,
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
