// npm run fleet-load -- --agents N [--gateway node|workers]: N simulated agents (the project's codec, the
// agent's reconnect backoff), each on its own WebSocket, against a gateway this tool starts and stops
// itself; prints the issue-19 table (push latency, PUT answer time, burst convergence, CPU, restart, stop).
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { Command } from 'commander';
import { STATUS_HEARTBEAT_MS } from '../agent/control/link.js';
import { CONTROL_PATH } from '../shared/control-protocol.js';
import type { AgentsAnswer, AgentsRequest, AgentsWorkerData } from './fleet-load-agents.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TARGET = 'iqn.2024-01.com.example.outpost:fleet-load';
const ACLS = 8; // CHAP ACLs on the shared target: every snapshot carries their opened secrets
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Opts { threads: number; connectParallel: number; parallel: number; singles: number; agents: number; gateway: 'node' | 'workers'; puts: number; sources: number; statusMs: number; restart: boolean; timeout: number }

const cmd = new Command('fleet-load')
  .option('--agents <n>', 'simulated agents', '1000')
  .option('--gateway <kind>', 'node or workers (wrangler dev)', 'node')
  .option('--puts <n>', 'PUTs in the burst (0: no burst)', '20')
  .option('--connect-parallel <n>', 'WebSocket handshakes in flight at once while connecting the fleet', '256')
  .option('--parallel <n>', 'PUTs of the burst in flight at once (1: each sent when the previous one answered)', '20')
  .option('--singles <n>', 'single PUTs measured one after the other (the median is reported)', '3')
  .option('--threads <n>', 'worker threads holding the simulated agents', '2')
  .option('--sources <n>', 'loopback source addresses 127.0.0.2… (ephemeral ports per address)', '8')
  .option('--status-ms <ms>', 'status period of each simulated agent (default: the link\'s heartbeat; its status does not change; 5000 is the period before issue 19)', String(STATUS_HEARTBEAT_MS))
  .option('--no-restart', 'skip the gateway restart phase')
  .option('--keep <dir>', 'keep the gateway data, keys and agent tokens in DIR and reuse them on the next run with the same --agents (enrolling 10,000 agents takes minutes)')
  .option('--profile <dir>', 'write a V8 CPU profile of the Node gateway into DIR (node --cpu-prof)')
  .option('--timeout <s>', 'give up on a phase after this many seconds', '300')
  .parse();
const raw = cmd.opts<Record<string, string | boolean>>();
const opts: Opts = { threads: Math.max(1, Number(raw.threads)), connectParallel: Math.max(1, Number(raw.connectParallel)), parallel: Math.max(1, Number(raw.parallel)), singles: Math.max(1, Number(raw.singles)), agents: Number(raw.agents), gateway: raw.gateway as Opts['gateway'], puts: Number(raw.puts), sources: Number(raw.sources), statusMs: Number(raw.statusMs), restart: raw.restart !== false, timeout: Number(raw.timeout) * 1000 };
if (!Number.isInteger(opts.agents) || opts.agents < 1) throw new Error('--agents must be a positive integer');
if (opts.gateway !== 'node' && opts.gateway !== 'workers') throw new Error('--gateway must be node or workers');

// Gateway process --------------------------------------------------------------------------------
const freePort = (): Promise<number> => new Promise((res, rej) => {
  const s = createServer();
  s.once('error', rej);
  s.listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); });
});

class Gateway {
  child: ChildProcess | undefined;
  log = '';
  readonly url: string;
  constructor(readonly port: number, readonly dir: string, readonly adminToken: string, readonly secretKey: string) {
    this.url = `http://127.0.0.1:${port}`;
  }
  async start(): Promise<void> {
    const env = { ...process.env, OUTPOST_ADMIN_TOKEN: this.adminToken, OUTPOST_SECRET_KEY: this.secretKey, WRANGLER_SEND_METRICS: 'false', CI: '1', NO_COLOR: '1' };
    const args = opts.gateway === 'node'
      ? [...(raw.profile ? ['--cpu-prof', `--cpu-prof-dir=${resolve(String(raw.profile))}`] : []), join(root, 'bin/outpost.js'), 'gateway', '--port', String(this.port), '--data', join(this.dir, 'data'), '--log-level', 'warn']
      : [join(root, 'node_modules/wrangler/bin/wrangler.js'), 'dev', '--local', '--config', join(root, 'wrangler.toml'), '--ip', '127.0.0.1', '--port', String(this.port),
        '--inspector-port', String(await freePort()), '--persist-to', join(this.dir, 'state'), '--env-file', join(this.dir, 'secrets.env'), '--show-interactive-dev-session=false', '--log-level', 'warn'];
    // detached: its own process group, so CPU is summed over wrangler + workerd and all of it is stopped
    const c = spawn(process.execPath, args, { cwd: root, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout!.on('data', (d) => (this.log = (this.log + String(d)).slice(-20_000)));
    this.child = c;
    c.stderr!.on('data', (d) => (this.log = (this.log + String(d)).slice(-20_000)));
    // a restarted wrangler dev queues every redialling agent's upgrade ahead of this probe: a 1-s probe
    // timeout and a 90-s deadline failed at 2,000 agents although the gateway was answering them
    const deadline = Date.now() + Math.max(90_000, opts.timeout);
    while (Date.now() < deadline) {
      if (c.exitCode !== null) throw new Error(`gateway exited (${c.exitCode}):\n${this.log}`);
      try {
        if ((await fetch(this.url + '/healthz', { signal: AbortSignal.timeout(10_000) })).ok) return;
      } catch { /* not yet */ }
      await sleep(100);
    }
    throw new Error(`gateway not ready:\n${this.log}`);
  }
  /** SIGTERM, then SIGKILL after 5 s; how long the gateway took to exit, and whether it had to be killed. */
  async stop(): Promise<{ exitMs: number; killed: boolean }> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return { exitMs: 0, killed: false };
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    // Signalled and watched from a worker thread: this process's own event loop, busy with thousands of
    // agents losing their sockets, would see the exit late (it made a 2-s stop look like 20 s).
    const watch = new Worker(`
      const { parentPort, workerData: { pid } } = require('node:worker_threads');
      const { readFileSync } = require('node:fs');
      const t0 = performance.now();
      let killed = false;
      try { process.kill(-pid, 'SIGTERM'); } catch {}
      const gone = () => { try { return / [ZX] /.test(readFileSync('/proc/' + pid + '/stat', 'utf8').replace(/^[^]*[)]/, '')); } catch { return true; } };
      const tick = setInterval(() => {
        if (!killed && performance.now() - t0 > 5000) { killed = true; try { process.kill(-pid, 'SIGKILL'); } catch {} }
        if (gone()) { clearInterval(tick); parentPort.postMessage({ exitMs: performance.now() - t0, killed }); }
      }, 5);`, { eval: true, workerData: { pid: c.pid } });
    const { exitMs, killed } = await new Promise<{ exitMs: number; killed: boolean }>((r) => {
      watch.once('message', r);
      watch.once('error', () => { try { process.kill(-c.pid!, 'SIGKILL'); } catch { /* gone */ } r({ exitMs: NaN, killed: true }); });
    });
    await watch.terminate();
    await exited;
    for (let i = 0; i < 40 && (await this.answering()); i++) await sleep(250); // workerd may outlive wrangler briefly
    return { exitMs, killed };
  }
  private async answering(): Promise<boolean> {
    try { await fetch(this.url + '/healthz', { signal: AbortSignal.timeout(300) }); return true; } catch { return false; }
  }
  /** utime + stime (seconds) and RSS (MiB) over the gateway's process group. */
  async usage(): Promise<{ cpu: number; rssMiB: number }> {
    const pgid = this.child?.pid;
    let ticks = 0, rssKiB = 0;
    if (pgid === undefined) return { cpu: 0, rssMiB: 0 };
    for (const pid of await readdir('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 on
        if (Number(f[2]) !== pgid) continue;
        ticks += Number(f[11]) + Number(f[12]);
        rssKiB += Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      } catch { /* exited meanwhile */ }
    }
    return { cpu: ticks / 100, rssMiB: rssKiB / 1024 };
  }
  /** One request on its own connection: a kept-alive one may be closed by the server just as it is reused. */
  api(method: string, path: string, body?: unknown): Promise<any> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(this.url + path, { method, agent: false, headers: { authorization: `Bearer ${this.adminToken}`, ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}) } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => (res.statusCode === 200 || res.statusCode === 201 ? resolve(JSON.parse(text)) : reject(new Error(`${method} ${path}: HTTP ${res.statusCode} ${text}`))));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(payload);
    });
  }
}

// Simulated agents -------------------------------------------------------------------------------
/** What --keep saves: enough to start the same gateway again and connect the same agents. */
interface Saved { gateway: string; adminToken: string; secretKey: string; ids: { id: string; token: string }[] }

/**
 * The simulated agents, spread over --threads worker threads (scripts/fleet-load-agents.ts): one event loop
 * holding 10,000 sockets was slower than the gateway it measured. `ask` sends one request to every thread
 * and resolves with their answers, or fails after the phase timeout.
 */
class AgentThreads {
  private readonly workers: Worker[] = [];
  private seq = 0;
  private readonly waiting = new Map<number, { answers: AgentsAnswer[]; resolve: (a: AgentsAnswer[]) => void }>();
  constructor(wsUrl: string, ids: readonly { token: string }[], threads: number) {
    const n = Math.max(1, Math.min(threads, ids.length));
    for (let w = 0; w < n; w++) {
      const share = ids.flatMap((x, i) => (i % n === w ? [{ i, token: x.token }] : []));
      const workerData: AgentsWorkerData = { wsUrl, target: TARGET, sources: opts.sources, statusMs: opts.statusMs, agents: share };
      const worker = new Worker(new URL('./fleet-load-agents.js', import.meta.url), { workerData });
      worker.on('message', (a: AgentsAnswer) => {
        const wait = this.waiting.get(a.seq);
        if (!wait) return;
        wait.answers.push(a);
        if (wait.answers.length === this.workers.length) {
          this.waiting.delete(a.seq);
          wait.resolve(wait.answers);
        }
      });
      worker.on('error', (e) => console.error(`agents thread ${w} failed: ${e.message}`));
      this.workers.push(worker);
    }
  }
  async ask(what: string, r: DistributiveOmit<AgentsRequest, 'seq'>, timeoutMs = opts.timeout): Promise<AgentsAnswer[]> {
    const seq = ++this.seq;
    let timer: NodeJS.Timeout | undefined;
    const answered = new Promise<AgentsAnswer[]>((resolve) => this.waiting.set(seq, { answers: [], resolve }));
    for (const w of this.workers) w.postMessage({ ...r, seq });
    try {
      return await Promise.race([answered, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: not reached within ${timeoutMs / 1000} s`)), timeoutMs)))]);
    } finally {
      clearTimeout(timer);
      this.waiting.delete(seq);
    }
  }
  async stop(): Promise<void> {
    await this.ask('agents stopped', { type: 'stop' }, 10_000).catch(() => {});
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
type DistributiveOmit<T, K extends keyof never> = T extends unknown ? Omit<T, K> : never;

/** utime + stime of this process (every thread), in seconds. */
async function toolCpu(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}
/** Absolute milliseconds, comparable with the worker threads' times. */
const now = (): number => performance.timeOrigin + performance.now();

async function pool<T>(items: readonly T[], width: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  }));
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const aclBody = (n: number) => ({ chap: { userid: 'host-0', password: `Load-Secret-${String(n).padStart(6, '0')}` }, mapped_luns: [{ index: 0, tpg_lun: 0 }] });

async function main(): Promise<void> {
  const keep = raw.keep ? resolve(String(raw.keep)) : undefined;
  const dir = keep ?? (await mkdtemp(join(tmpdir(), 'outpost-fleet-load-')));
  const saved = keep ? await readFile(join(keep, 'fleet.json'), 'utf8').then((t) => JSON.parse(t) as Saved, () => undefined) : undefined;
  if (saved && (saved.gateway !== opts.gateway || saved.ids.length !== opts.agents)) throw new Error(`${keep} holds a fleet of ${saved.ids.length} agents on ${saved.gateway}: use another --keep directory`);
  const adminToken = saved?.adminToken ?? randomBytes(24).toString('base64url');
  const secretKey = saved?.secretKey ?? randomBytes(32).toString('base64url');
  if (keep) await mkdir(keep, { recursive: true, mode: 0o700 });
  // warn, as the Node gateway's --log-level below: an info line per hello and per ack is not what is measured
  await writeFile(join(dir, 'secrets.env'), `OUTPOST_ADMIN_TOKEN=${adminToken}\nOUTPOST_SECRET_KEY=${secretKey}\nOUTPOST_LOG_LEVEL=warn\n`, { mode: 0o600 });
  const gw = new Gateway(await freePort(), dir, adminToken, secretKey);
  const wsUrl = gw.url.replace(/^http/, 'ws') + CONTROL_PATH;
  let threads: AgentThreads | undefined;
  const stop = async (): Promise<void> => {
    await threads?.stop();
    await gw.stop();
    if (!keep) await rm(dir, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stop().then(() => process.exit(130)));
  try {
    await gw.start();
    const say = (s: string): void => console.error(`[${new Date().toISOString().slice(11, 19)}] ${s} (load ${load()})`);
    let ids = saved?.ids ?? [];
    if (!saved) {
      say(`gateway (${opts.gateway}) at ${gw.url}; enrolling ${opts.agents} agents`);
      for (let k = 0; k < ACLS; k++) await gw.api('PUT', `/v1/acls/${TARGET}/iqn.1994-05.com.example:host-${k}`, aclBody(k));
      ids = [];
      await pool(Array.from({ length: opts.agents }, (_, i) => i), 16, async (i) => {
        const r = await gw.api('POST', '/v1/agents', { name: `store-${String(i).padStart(5, '0')}` });
        await gw.api('PUT', `/v1/agents/${r.id}/targets/${TARGET}`);
        ids[i] = { id: r.id, token: r.token };
      });
      if (keep) await writeFile(join(keep, 'fleet.json'), JSON.stringify({ gateway: opts.gateway, adminToken, secretKey, ids } satisfies Saved), { mode: 0o600 });
    } else say(`gateway (${opts.gateway}) at ${gw.url}; reusing the ${opts.agents} agents enrolled in ${keep}`);
    threads = new AgentThreads(wsUrl, ids, opts.threads);
    const all = threads;
    /** Every agent's time (absolute ms) of first holding `version` or newer, and its snapshots since `want`. */
    const reached = async (what: string): Promise<{ times: number[]; snapshots: number[] }> => {
      const answers = await all.ask(what, { type: 'reached' });
      return { times: answers.flatMap((x) => x.times!), snapshots: answers.flatMap((x) => x.snapshots!) };
    };
    const wantVersion = async (v: number): Promise<number> => (await all.ask('want', { type: 'want', want: v }, 30_000)).reduce((x, a) => x + a.connects!, 0);

    say(`connecting (${Math.min(opts.threads, ids.length)} threads of simulated agents)`);
    let version: number = (await gw.api('GET', `/v1/acls/${TARGET}`)).version;
    const tc = performance.now();
    await all.ask('all agents connected with their first snapshot', { type: 'connect', parallel: Math.max(1, Math.ceil(opts.connectParallel / opts.threads)), want: version });
    const connectS = (performance.now() - tc) / 1000;
    await all.ask('chatter', { type: 'chatter' });
    await sleep(2000);
    const rssConnected = (await gw.usage()).rssMiB;
    say(`connected in ${connectS.toFixed(1)} s, gateway RSS ${rssConnected.toFixed(0)} MiB`);

    // One ACL PUT: answer time, and each agent's time to hold its version.
    const single: { answer: number; p50: number; p99: number; max: number; load: string }[] = [];
    for (let round = 0; round < opts.singles; round++) {
      const want = version + 1; // this tool is the only writer: the PUT makes the next version
      await wantVersion(want);
      const t0 = now();
      const r = await gw.api('PUT', `/v1/acls/${TARGET}/iqn.1994-05.com.example:host-0`, aclBody(1000 + round));
      const answer = now() - t0;
      if (r.version !== want) throw new Error(`expected version ${want}, the gateway answered ${r.version}`);
      version = r.version;
      const lat = (await reached(`all agents at version ${want}`)).times.map((t) => t - t0);
      single.push({ answer, p50: pct(lat, 50), p99: pct(lat, 99), max: Math.max(...lat), load: load() });
      say(`PUT v${want}: answered ${answer.toFixed(0)} ms, applied p50 ${pct(lat, 50).toFixed(0)} / p99 ${pct(lat, 99).toFixed(0)} / max ${Math.max(...lat).toFixed(0)} ms`);
      await sleep(1000);
    }
    const s = single.sort((x, y) => x.p99 - y.p99)[Math.floor(single.length / 2)]!; // the median round by p99

    // A burst of PUTs, --parallel of them in flight at once (1: each sent when the previous one answered).
    let burst = { s: '—', cpu: '—', tool: '—', snaps: '—', load: '—' };
    if (opts.puts > 0) {
      const want = version + opts.puts;
      await wantVersion(want);
      const work0 = (await gw.api('GET', '/v1/fleet')).fanout?.work;
      const cpu0 = (await gw.usage()).cpu;
      const tool0 = await toolCpu();
      const tb = now();
      let last = 0;
      const answers: number[] = [];
      const versions: number[] = [];
      await pool(Array.from({ length: opts.puts }, (_, k) => k), opts.parallel, async (k) => {
        const t0 = now();
        const v = (await gw.api('PUT', `/v1/acls/${TARGET}/iqn.1994-05.com.example:host-${k % ACLS}`, aclBody(2000 + k))).version;
        versions.push(v);
        last = Math.max(last, v);
        answers.push(now() - t0);
      });
      const burstAnswered = now() - tb;
      say(`burst PUTs (${Math.min(opts.parallel, opts.puts)} at a time) answered after p50 ${pct(answers, 50).toFixed(0)} / max ${Math.max(...answers).toFixed(0)} ms each`);
      if (last !== want) throw new Error(`expected version ${want} after the burst, the gateway answered ${last} (the PUTs' versions: ${versions.sort((x, y) => x - y).join(',')})`);
      const { times, snapshots: snaps } = await reached(`all agents at version ${want}`);
      const burstS = (Math.max(...times) - tb) / 1000;
      await sleep(500); // let the last acks land before reading the CPU counters
      const burstCpu = (await gw.usage()).cpu - cpu0;
      const burstTool = (await toolCpu()) - tool0;
      const mean = (snaps.reduce((x, y) => x + y, 0) / snaps.length).toFixed(1);
      const work1 = (await gw.api('GET', '/v1/fleet')).fanout?.work;
      if (work0 && work1) {
        const d = (k: string): number => work1[k] - work0[k];
        say(`burst work at the gateway: ${d('frames_built')} frames built, ${d('snapshots_sent')} snapshots sent, ${d('report_commits')} report commits of ${d('report_rows')} rows (with this tool's two GET /v1/fleet)`);
      }
      burst = { s: `${burstS.toFixed(1)} s`, cpu: `${burstCpu.toFixed(1)} CPU-s`, tool: `${burstTool.toFixed(1)} CPU-s`, snaps: `${mean} / ${Math.max(...snaps)}`, load: load() };
      say(`${opts.puts} PUTs (answered in ${(burstAnswered / 1000).toFixed(1)} s): all at v${want} after ${burstS.toFixed(1)} s, gateway CPU ${burstCpu.toFixed(1)} s (this tool: ${burstTool.toFixed(1)} s, its 500-ms tail included), snapshots/agent mean ${mean} max ${Math.max(...snaps)}`);
    }

    let restart = '—';
    if (opts.restart) {
      const connects0 = await wantVersion(Number.MAX_SAFE_INTEGER);
      const tk = now();
      const stopped = await gw.stop();
      const spawned = now(); // the old gateway has exited: every snapshot from here on is the new one's
      await gw.start();
      const up = now();
      const answers = await all.ask('all agents back after the restart', { type: 'back', since: spawned });
      const last = Math.max(...answers.flatMap((x) => x.times!));
      const tries = answers.reduce((x, a) => x + a.connects!, 0) - connects0;
      const exit = `exited ${(stopped.exitMs / 1000).toFixed(1)} s after SIGTERM${stopped.killed ? ', killed' : ''}`;
      restart = `${((last - tk) / 1000).toFixed(1)} s after the stop, ${((last - up) / 1000).toFixed(1)} s after answering (${exit}; ${((up - tk) / 1000).toFixed(1)} s down; ${(tries / opts.agents).toFixed(1)} connects/agent)`;
      say(`restart: all back ${restart}`);
    }
    const rss = (await gw.usage()).rssMiB;

    console.log(`\n| agents | gateway | push p50 / p99 (max) | one ACL PUT answered after | ${opts.puts} PUTs (${opts.parallel} in flight) until all agents at the last version | gateway CPU for those ${opts.puts} PUTs (this tool's) | snapshots per agent in the burst (mean / max) | all back after a restart | gateway RSS |`);
    console.log('|---|---|---|---|---|---|---|---|---|');
    console.log(`| ${opts.agents.toLocaleString('en-US')} | ${opts.gateway} | ${s.p50.toFixed(0)} / ${s.p99.toFixed(0)} ms (${s.max.toFixed(0)}) | ${(s.answer / 1000).toFixed(2)} s | ${burst.s} | ${burst.cpu} (${burst.tool}) | ${burst.snaps} | ${restart} | ${rss.toFixed(0)} MiB |`);
    console.log(`\nload average during the single PUTs: ${s.load}; during the burst: ${burst.load}; connect of all agents: ${connectS.toFixed(1)} s`);
  } catch (e) {
    console.error(`fleet-load failed: ${(e as Error).message}\n--- gateway log (tail) ---\n${gw.log.slice(-3000)}`);
    process.exitCode = 1;
  } finally {
    await stop();
  }
}

await main();
