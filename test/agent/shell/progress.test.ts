// Issue 14, progress on long work: an object volume's `flush` (upload every dirty byte, write a root) followed
// from the shell — a cli-progress bar in a real pseudo-terminal (tmux) that advances to 100 %, Ctrl-C that only
// stops watching, `jobs` / `jobs wait ID`; plain periodic lines on a pipe; the flush at SIGTERM in the log.
// The bucket is a real s3rver behind a proxy that caps the upload rate, so the flush lasts several seconds.
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BIN, outpost, spawnAgent, tempAgentDirs, type AgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { startThrottleProxy, type ThrottleProxy } from '../../helpers/throttle-proxy.js';
import { run } from '../object/shell-agent.js';

const exec = promisify(execFile);
const hasTools = spawnSync('qemu-img', ['--version']).status === 0 && spawnSync('tmux', ['-V']).status === 0;
const skip = !hasTools && 'qemu-img or tmux not installed';
const TARGET = 'iqn.2003-01.org.outpost.test:progress';
const INITIATOR = 'iqn.2003-01.org.outpost.test:progress-host';
const VOL = '/backstores/object/vol1';
const MiB = 1024 * 1024;
const DATA = 48 * MiB;
/** Upload cap: DATA takes about 8 s to leave, long enough for several updates on any machine. */
const RATE = 6 * MiB;

const SOCK = `outpost-progress-${process.pid}`;
const tmux = (...args: string[]) => exec('tmux', ['-L', SOCK, ...args]);
const capture = async (s: string) => (await tmux('capture-pane', '-p', '-t', s)).stdout;

async function screenUntil(s: string, re: RegExp, ms = 20_000): Promise<string> {
  const deadline = Date.now() + ms;
  let last = '';
  while (Date.now() < deadline) {
    last = await capture(s);
    if (re.test(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${re} in:\n${last}`);
}

describe('progress of a flush', { skip, timeout: 180_000 }, () => {
  let s3: S3rverHandle;
  let proxy: ThrottleProxy;
  let dirs: AgentDirs;
  let agent: SpawnedAgent;
  let port = 0;
  let src = '';

  const sh = async (args: string[], env: NodeJS.ProcessEnv = {}) => outpost(dirs.stateDir, args, { ...s3.env, ...env });
  const ok = async (args: string[]): Promise<string> => {
    const r = await sh(args);
    assert.equal(r.code, 0, `outpost ${args.join(' ')}: ${r.stdout}${r.stderr}`);
    return r.stdout;
  };
  const figure = async (label: string): Promise<number> => {
    const line = (await ok([VOL, 'info'])).split('\n').find((l) => l.startsWith(`  ${label}: `));
    assert.ok(line, `${label} missing from info`);
    return Number((/\((\d+)\)$/.exec(line) ?? /: (\d+)/.exec(line))![1]);
  };
  /** Writes DATA with the bucket down, so all of it is dirty in the cache when the bucket comes back. */
  const makeDirty = async () => {
    await s3.stop();
    const opts = `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=0,initiator-name=${INITIATOR}`;
    const w = await run('qemu-img', ['convert', '-n', '-t', 'writeback', '-f', 'raw', '--target-image-opts', src, opts]);
    assert.equal(w.code, 0, `qemu-img convert: ${w.out}`);
    assert.ok((await figure('dirty bytes')) >= DATA);
    await s3.start();
  };

  before(async () => {
    s3 = await startS3rver();
    proxy = await startThrottleProxy(s3.port, RATE);
    dirs = await tempAgentDirs();
    port = await freePort();
    src = join(dirs.dir, 'src.img');
    await writeFile(src, randomBytes(DATA));
    agent = await spawnAgent({ dirs, env: { ...s3.env } });
    await ok(['set', 'global', 'auto_add_default_portal=false']);
    await ok(['/backstores/object', 'create', 'vol1', '128M', `bucket=${s3.bucket}`, 'prefix=progress/vol1', `endpoint=${proxy.endpoint}`,
      'force_path_style=true', 'cache_size=128M']);
    await ok(['/iscsi', 'create', TARGET]);
    await ok([`/iscsi/${TARGET}/tpg1/luns`, 'create', VOL]);
    await ok([`/iscsi/${TARGET}/tpg1/acls`, 'create', INITIATOR]);
    await ok([`/iscsi/${TARGET}/tpg1/portals`, 'create', '127.0.0.1', String(port)]);
  });
  after(async () => {
    await tmux('kill-server').catch(() => {});
    await agent?.cleanup();
    await proxy?.close();
    await s3?.dispose();
  });

  it('on a TTY: a bar that advances to 100 %, Ctrl-C stops watching only, jobs and jobs wait', { timeout: 90_000 }, async () => {
    await makeDirty();
    const s = `progress-${process.pid}`;
    await tmux('new-session', '-d', '-s', s, '-x', '140', '-y', '50', `${process.execPath} ${BIN} --state-dir ${dirs.stateDir}; echo EXITED $?; sleep 60`);
    await screenUntil(s, /^\/>\s*$/m);
    await tmux('send-keys', '-t', s, `${VOL} flush`, 'Enter');
    let screen = await screenUntil(s, /Flushing vol1: \d+ dirty bytes to upload \(job (\d+)\)\./);
    const job = /\(job (\d+)\)/.exec(screen)![1]!;
    screen = await screenUntil(s, /flush vol1 \[[^\]]+\] \d+% \|/);
    const pct0 = Number(/flush vol1 \[[^\]]+\] (\d+)% \|/.exec(screen)![1]);
    assert.ok(pct0 < 100, `the flush was over before it could be watched:\n${screen}`);
    // Ctrl-C stops watching; the flush goes on
    await tmux('send-keys', '-t', s, 'C-c');
    await screenUntil(s, new RegExp(`Stopped watching job ${job}; it goes on \\(jobs wait ${job}\\)\\.\\n/>`));
    await tmux('send-keys', '-t', s, 'jobs', 'Enter');
    screen = await screenUntil(s, new RegExp(`^${job}\\s+flush\\s+${VOL.replace(/\//g, '\\/')}\\s+running\\s+\\d+%`, 'm'));
    assert.match(screen, /^ID\s+KIND\s+SUBJECT\s+STATE\s+PCT\s+DONE\s+RATE\s+ETA/m);
    // jobs wait follows it again: the bar moves on to 100 %
    await tmux('send-keys', '-t', s, `jobs wait ${job}`, 'Enter');
    const seen = new Set<number>();
    const deadline = Date.now() + 60_000;
    for (;;) {
      screen = await capture(s);
      const after = screen.slice(screen.lastIndexOf(`jobs wait ${job}`));
      const m = /flush vol1 \[[^\]]+\] (\d+)% \|/.exec(after);
      if (m) seen.add(Number(m[1]));
      if (/flush vol1: 100% done, [\d.]+ MB in \d+s\n\/>/.test(after)) break;
      assert.ok(Date.now() < deadline, `no 100 % in:\n${screen}`);
      await new Promise((r) => setTimeout(r, 150));
    }
    const pcts = [...seen].sort((a, b) => a - b);
    assert.ok(pcts.length >= 2, `the bar did not advance: ${pcts.join(', ')}`);
    assert.equal(pcts.at(-1), 100, `the bar ended at ${pcts.at(-1)} %`);
    assert.ok(pcts[0]! >= pct0, 'progress went backwards');
    assert.equal(await figure('dirty bytes'), 0);
    await tmux('send-keys', '-t', s, 'exit', 'Enter');
    await screenUntil(s, /EXITED 0/);
  });

  it('on a pipe: a plain line every interval ending at 100 %, a new root; bad input changes nothing', { timeout: 90_000 }, async (t) => {
    const gen0 = await figure('manifest generation');
    await makeDirty();
    const r = await sh([VOL, 'flush'], { OUTPOST_PROGRESS_INTERVAL_MS: '1000' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    t.diagnostic(r.stdout);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0]!, /^Flushing vol1: \d+ dirty bytes to upload \(job \d+\)\.$/);
    const periodic = lines.slice(1, -1);
    assert.ok(periodic.length >= 2, `fewer than two progress lines:\n${r.stdout}`);
    for (const l of periodic) assert.match(l, /^flush vol1: \d+% [\d.]+ [kMG]?B\/s ETA \S+ \(uploading\)$/);
    const pcts = periodic.map((l) => Number(/: (\d+)%/.exec(l)![1]));
    assert.deepEqual(pcts, [...pcts].sort((a, b) => a - b), 'percent went backwards');
    assert.ok(pcts.some((p) => p > 0 && p < 100), `no intermediate percent: ${pcts.join(', ')}`);
    assert.match(lines.at(-1)!, /^flush vol1: 100% done, [\d.]+ MB in \d+s$/);
    assert.equal(await figure('dirty bytes'), 0);
    assert.ok((await figure('manifest generation')) > gen0, 'no new root after the flush');
    // a finished job: jobs wait prints its last line at once
    const job = /\(job (\d+)\)/.exec(lines[0]!)![1]!;
    const w = await sh(['jobs', 'wait', job]);
    assert.equal(w.code, 0);
    assert.match(w.stdout, /^flush vol1: 100% done/m);
    const list = await ok(['jobs']);
    t.diagnostic(list);
    assert.match(list, new RegExp(`^${job}\\s+flush\\s+/backstores/object/vol1\\s+done\\s+100%`, 'm'));
    // bad input: a clear error, exit 1
    for (const [args, msg] of [[['jobs', 'wait', '999'], /No job 999\./], [['jobs', 'wait', 'x'], /No job x\./], [['jobs', 'nope'], /Syntax: jobs \[wait ID\]/],
      [[VOL, 'flush', 'now'], /Too many parameters for command flush/], [['/backstores/fileio', 'flush'], /Command not found flush/]] as const) {
      const b = await sh([...args]);
      assert.equal(b.code, 1, `${args.join(' ')}: ${b.stdout}`);
      assert.match(b.stderr, msg);
    }
  });

  it('on a pipe, Ctrl-C (SIGINT) stops watching with exit 130; the flush goes on and jobs wait follows it to the end', { timeout: 90_000 }, async () => {
    await makeDirty();
    const c = spawn(process.execPath, [BIN, '--state-dir', dirs.stateDir, VOL, 'flush'], { env: { ...process.env, OUTPOST_PROGRESS_INTERVAL_MS: '500' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d));
    c.stderr.on('data', (d: Buffer) => (out += d));
    const exited = new Promise<number | null>((r) => c.once('exit', (code) => r(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!/^flush vol1: \d+% /m.test(out)) {
        assert.ok(Date.now() < deadline, `no progress line: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      c.kill('SIGINT');
      assert.equal(await exited, 130, out);
    } finally {
      c.kill('SIGKILL');
    }
    const job = /\(job (\d+)\)/.exec(out)![1]!;
    assert.match(out, new RegExp(`Stopped watching job ${job}; it goes on \\(jobs wait ${job}\\)\\.\\n$`));
    assert.doesNotMatch(out, /100% done/);
    const list = await ok(['jobs']);
    assert.match(list, new RegExp(`^${job}\\s+flush\\s+/backstores/object/vol1\\s+running\\s`, 'm'), list);
    const w = await sh(['jobs', 'wait', job], { OUTPOST_PROGRESS_INTERVAL_MS: '500' });
    assert.equal(w.code, 0, w.stdout + w.stderr);
    assert.match(w.stdout.trim().split('\n').at(-1)!, /^flush vol1: 100% done, [\d.]+ MB in \d+s$/);
    assert.equal(await figure('dirty bytes'), 0);
  });

  it('the flush at SIGTERM is a job: progress lines in the log, ending at 100 %', { timeout: 90_000 }, async () => {
    await makeDirty();
    const code = await agent.stop();
    assert.equal(code, 0, agent.stderr().slice(-2000));
    const msgs = agent.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg);
    const flush = msgs.filter((m) => m.startsWith('flush vol1: '));
    assert.ok(flush.some((m) => /^flush vol1: 0% .* \(stopping\) started$/.test(m)), flush.join('\n'));
    assert.ok(flush.filter((m) => /^flush vol1: \d+% [\d.]+ [kMG]?B\/s ETA \S+ \(stopping\)$/.test(m)).length >= 2, `fewer than two progress lines:\n${flush.join('\n')}`);
    assert.match(flush.at(-1)!, /^flush vol1: 100% done, [\d.]+ MB in \d+s$/);
  });
});
