// Test helper (issue 6): a running agent with an EMPTY config, an object LUN built entirely through the shell
// (`outpost … create`), an s3rver bucket on loopback, and qemu/libiscsi plumbing to reach the LUN.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { outpost, spawnAgent, tempAgentDirs, type AgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';

export const MiB = 1024 * 1024;
export const TARGET = 'iqn.2003-01.org.outpost.test:shellobj';
export const INITIATOR = 'iqn.2003-01.org.outpost.test:qemu-host';

export interface ShellObjectAgent {
  s3: S3rverHandle;
  dirs: AgentDirs;
  agent: SpawnedAgent;
  port: number;
  prefix: string;
  cacheDir: string;
  /** `outpost --state-dir … args`; throws on a non-zero exit. */
  sh(args: string[]): Promise<string>;
  /** qemu --image-opts for the LUN (extra: ",discard=unmap" …). */
  opts(extra?: string): string;
  /** Live figures from `outpost /backstores/object/vol1 info` (label → raw text after the colon). */
  info(): Promise<Map<string, string>>;
  /** SIGTERM (graceful stop: flush + final manifest), then a fresh agent on the same dirs. */
  restart(): Promise<void>;
  dispose(): Promise<void>;
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

/** Starts s3rver and an empty agent, then creates object LUN vol1 (size) + target + LUN + ACL + portal through the shell. */
export async function shellObjectAgent(o: { size: string; cacheSize: string; prefix: string }): Promise<ShellObjectAgent> {
  const s3 = await startS3rver();
  const dirs = await tempAgentDirs(); // no saveconfig.json: the agent starts empty
  const port = await freePort();
  let agent: SpawnedAgent | undefined;
  try {
    agent = await spawnAgent({ dirs, env: { ...s3.env } });
    const sh = async (args: string[]): Promise<string> => {
      const r = await outpost(dirs.stateDir, args, s3.env);
      if (r.code !== 0) throw new Error(`outpost ${args.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
      return r.stdout;
    };
    await sh(['set', 'global', 'auto_add_default_portal=false']); // no 0.0.0.0:3260 in tests
    await sh(['/backstores/object', 'create', 'vol1', o.size, `bucket=${s3.bucket}`, `prefix=${o.prefix}`, `endpoint=${s3.endpoint}`,
      'force_path_style=true', `cache_size=${o.cacheSize}`]);
    await sh(['/iscsi', 'create', TARGET]);
    await sh([`/iscsi/${TARGET}/tpg1/luns`, 'create', '/backstores/object/vol1']);
    await sh([`/iscsi/${TARGET}/tpg1/acls`, 'create', INITIATOR]);
    await sh([`/iscsi/${TARGET}/tpg1/portals`, 'create', '127.0.0.1', String(port)]);
    await sh(['saveconfig']);
    const h: ShellObjectAgent = {
      s3, dirs, agent, port, prefix: o.prefix, cacheDir: join(dirs.stateDir, 'cache', 'vol1'), sh,
      opts: (extra = '') => `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=0,initiator-name=${INITIATOR}${extra}`,
      async info() {
        const out = await sh(['/backstores/object/vol1', 'info']);
        const live = out.split('\n').slice(out.split('\n').indexOf('live:') + 1);
        return new Map(live.filter((l) => l.startsWith('  ')).map((l) => {
          const i = l.indexOf(': ');
          return [l.slice(2, i), l.slice(i + 2)] as [string, string];
        }));
      },
      async restart() {
        const code = await h.agent.stop();
        if (code !== 0) throw new Error(`agent exited ${code}: ${h.agent.stderr().slice(-2000)}`);
        h.agent = await spawnAgent({ dirs, env: { ...s3.env } });
      },
      async dispose() {
        await h.agent.cleanup();
        await s3.dispose();
      },
    };
    return h;
  } catch (e) {
    await agent?.cleanup();
    await s3.dispose();
    throw e;
  }
}

/** The number inside "4.0MiB (4194304)" or "12" or "87.5%". */
export function figure(v: string | undefined): number {
  if (v === undefined) throw new Error('figure missing from info');
  const m = /\((\d+)\)$/.exec(v) ?? /^([\d.]+)/.exec(v);
  if (!m) throw new Error(`not a figure: ${v}`);
  return Number(m[1]);
}

export async function waitFor(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
