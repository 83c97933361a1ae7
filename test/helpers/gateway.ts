// Test gateways on loopback: the Node entry in-process, or the Workers entry in workerd via
// `wrangler dev --local`. Both expose the same handle so one behaviour suite runs on each.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startGateway, type RunningGateway } from '../../gateway/node/main.js';
import { freePort } from './net.js';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

export interface TestGateway {
  readonly kind: 'node' | 'worker';
  readonly url: string;
  readonly adminToken: string;
  /** Everything the gateway persists lives under here (scanned for clear-text secrets). */
  readonly storageDir: string;
  /** Captured log output so far. */
  logs(): string;
  /** Every response body the helpers received (scanned for secrets). */
  readonly responses: string[];
  stop(): Promise<void>;
  /** Starts again on the same port and storage after stop(). */
  start(): Promise<void>;
  dispose(): Promise<void>;
}

export interface ApiResult { status: number; body: any; text: string }

export async function api(gw: TestGateway, method: string, path: string, body?: unknown, opts: { token?: string | null; raw?: string } = {}): Promise<ApiResult> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? gw.adminToken : opts.token;
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let payload: string | undefined = opts.raw;
  if (body !== undefined) payload = JSON.stringify(body);
  if (payload !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(gw.url + path, { method, headers, body: payload });
  const text = await res.text();
  gw.responses.push(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text };
}

const newAdminToken = (): string => 'adm_' + randomBytes(18).toString('base64url');
const newSecretKey = (): string => 'key_' + randomBytes(24).toString('base64url');

export async function startNodeTestGateway(): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-gw-node-'));
  const adminToken = newAdminToken();
  const secretKey = newSecretKey();
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } }));
  let running: RunningGateway | undefined = await startGateway({ dataDir: dir, adminToken, secretKey, logger });
  const port = running.port;
  return {
    kind: 'node',
    url: running.url,
    adminToken,
    storageDir: dir,
    responses: [],
    logs: () => lines.join(''),
    async stop() {
      await running?.close();
      running = undefined;
    },
    async start() {
      running = await startGateway({ dataDir: dir, adminToken, secretKey, logger, port });
    },
    async dispose() {
      await running?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitHealthy(url: string, child: ChildProcess, timeoutMs: number, log: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${log()}`);
    try {
      const r = await fetch(url + '/healthz', { signal: AbortSignal.timeout(1000) });
      if (r.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`wrangler dev not ready within ${timeoutMs} ms:\n${log()}`);
}

/** The Workers gateway in workerd (`wrangler dev --local`), secrets passed through an env file. */
export async function startWorkerTestGateway(): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-gw-worker-'));
  const adminToken = newAdminToken();
  const secretKey = newSecretKey();
  const envFile = join(dir, 'secrets.env');
  await writeFile(envFile, `OUTPOST_ADMIN_TOKEN=${adminToken}\nOUTPOST_SECRET_KEY=${secretKey}\n`, { mode: 0o600 });
  const storageDir = join(dir, 'state');
  let port = await freePort();
  let url = `http://127.0.0.1:${port}`;
  let out = '';
  let child: ChildProcess | undefined;
  const wrangler = join(PROJECT_ROOT, 'node_modules/wrangler/bin/wrangler.js');
  const launch = async (): Promise<void> => {
    const inspector = await freePort();
    const c = spawn(process.execPath, [wrangler, 'dev', '--local', '--config', join(PROJECT_ROOT, 'wrangler.toml'), '--ip', '127.0.0.1', '--port', String(port),
      '--inspector-port', String(inspector), '--persist-to', storageDir, '--env-file', envFile, '--show-interactive-dev-session=false', '--log-level', 'info'], {
      cwd: PROJECT_ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: '1', NO_COLOR: '1' },
    });
    child = c;
    c.stdout!.on('data', (d) => (out += String(d)));
    c.stderr!.on('data', (d) => (out += String(d)));
    await waitHealthy(url, c, 90_000, () => out);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    try {
      process.kill(-c.pid!, 'SIGTERM');
    } catch {
      return;
    }
    const t = setTimeout(() => { try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ } }, 5000);
    await exited;
    clearTimeout(t);
    // workerd may outlive wrangler for a moment; wait until the port is free again
    for (let i = 0; i < 40; i++) {
      try {
        await fetch(url + '/healthz', { signal: AbortSignal.timeout(300) });
      } catch {
        return;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  // A free port can be taken by another process before wrangler binds it (tests run side by side): the
  // first start then picks another one. A restart keeps its port, as the agents under test dial it.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt === 3 || !/Address already in use/.test(out)) throw err;
      out = '';
      port = await freePort();
      url = `http://127.0.0.1:${port}`;
    }
  }
  return {
    kind: 'worker',
    url,
    adminToken,
    storageDir,
    responses: [],
    logs: () => out,
    stop: kill,
    start: launch,
    async dispose() {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Paths of files under `dir` (recursively) whose bytes contain any of `needles`. */
export async function filesContaining(dir: string, needles: readonly string[]): Promise<string[]> {
  const hits: string[] = [];
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      const s = await stat(p);
      if (s.isDirectory()) await walk(p);
      else {
        const bytes = await readFile(p);
        if (needles.some((x) => bytes.includes(Buffer.from(x)))) hits.push(p);
      }
    }
  };
  await walk(dir);
  return hits;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
