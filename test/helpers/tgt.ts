// Test helper: Debian's tgt (tgtd + tgtadm) on a loopback ephemeral portal, in its own control namespace
// (-C N: its own management socket), with file-backed LUNs and CHAP; stop() deletes the targets and the
// daemon (the supported shutdown: tgtd ignores SIGTERM in the foreground) and kills it if it lingers.
// scripts/bench/tgt.ts starts its reference tgtd through this too.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from './net.js';

export const TGTD = '/usr/sbin/tgtd';
const TGTADM = 'tgtadm';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<{ code: number | null; out: string; spawnError?: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let spawnError: string | undefined;
    c.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    c.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (e) => { spawnError = e.message; });
    c.on('close', (code) => { clearTimeout(t); resolve({ code, out, spawnError }); });
  });
}

/** A control port whose socket no other tgtd (system or another test's) holds. */
function pickControlPort(): number {
  for (;;) {
    // tgtadm accepts -C values up to 32767.
    const n = 10_000 + Math.floor(Math.random() * 22_000);
    if (!existsSync(`/var/run/tgtd/socket.${n}`) && !existsSync(`/var/run/tgtd/socket.${n}.lock`)) return n;
  }
}

export interface TgtChap {
  user: string;
  password: string;
  /** Mutual CHAP: the target answers the initiator's challenge as this user. */
  mutualUser?: string;
  mutualPassword?: string;
}

export class TgtDaemon {
  readonly tids = new Set<number>();
  private constructor(readonly child: ChildProcess, readonly controlPort: number, readonly host: string, readonly port: number, readonly logPath: string) {}

  get portal(): string {
    return `${this.host}:${this.port}`;
  }

  /** Starts tgtd; throws with the reason (not installed, did not answer) when it cannot. */
  /** `port` reuses a portal (a SAN coming back after kill()); default a fresh ephemeral one. */
  static async start(o: { workDir: string; host?: string; port?: number }): Promise<TgtDaemon> {
    if (!existsSync(TGTD)) throw new Error(`${TGTD} not installed (Debian package tgt)`);
    const host = o.host ?? '127.0.0.1';
    const port = o.port ?? await freePort(host);
    const controlPort = pickControlPort();
    const logPath = join(o.workDir, `tgtd-${controlPort}.log`);
    const fd = openSync(logPath, 'a');
    const child = spawn(TGTD, ['-f', '-C', String(controlPort), '--iscsi', `portal=${host}:${port}`], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const d = new TgtDaemon(child, controlPort, host, port, logPath);
    // The management socket appears a moment after start; retry until it answers.
    let last = '';
    for (let i = 0; i < 80; i++) {
      if (child.exitCode !== null) break;
      const r = await run(TGTADM, ['-C', String(controlPort), '--mode', 'sys', '--op', 'show'], 5000);
      if (r.code === 0) return d;
      last = r.spawnError ?? r.out.trim();
      await sleep(100);
    }
    await d.stop();
    throw new Error(`tgtd did not start: ${last || `exited with ${child.exitCode}`} (log ${logPath})`);
  }

  async adm(args: string[]): Promise<void> {
    const r = await run(TGTADM, ['-C', String(this.controlPort), '--lld', 'iscsi', ...args], 10_000);
    if (r.code !== 0) throw new Error(`tgtadm ${args.join(' ')}: ${r.spawnError ?? r.out.trim()}`);
  }

  /** A target `tid` named `iqn` with file-backed LUNs 1.. (LUN 0 is tgt's controller), open to every address. */
  async addTarget(tid: number, iqn: string, luns: Array<{ path: string; blockSize?: number }>, chap?: TgtChap): Promise<void> {
    await this.adm(['--mode', 'target', '--op', 'new', '--tid', String(tid), '--targetname', iqn]);
    this.tids.add(tid);
    for (const [i, l] of luns.entries()) {
      const extra = l.blockSize ? ['--blocksize', String(l.blockSize)] : [];
      await this.adm(['--mode', 'logicalunit', '--op', 'new', '--tid', String(tid), '--lun', String(i + 1), '--backing-store', l.path, '--bstype', 'rdwr', ...extra]);
    }
    if (chap) {
      await this.adm(['--mode', 'account', '--op', 'new', '--user', chap.user, '--password', chap.password]).catch((e: Error) => { if (!/exist/i.test(e.message)) throw e; });
      await this.adm(['--mode', 'account', '--op', 'bind', '--tid', String(tid), '--user', chap.user]);
      if (chap.mutualUser && chap.mutualPassword) {
        await this.adm(['--mode', 'account', '--op', 'new', '--user', chap.mutualUser, '--password', chap.mutualPassword]).catch((e: Error) => { if (!/exist/i.test(e.message)) throw e; });
        await this.adm(['--mode', 'account', '--op', 'bind', '--tid', String(tid), '--user', chap.mutualUser, '--outgoing']);
      }
    }
    await this.adm(['--mode', 'target', '--op', 'bind', '--tid', String(tid), '--initiator-address', 'ALL']);
  }

  /** Deletes the targets and the daemon; SIGKILL if it has not exited 3 s later. */
  async stop(): Promise<void> {
    const c = this.child;
    if (c.exitCode === null && c.signalCode === null) {
      for (const tid of [...this.tids].reverse()) await this.adm(['--mode', 'target', '--op', 'delete', '--force', '--tid', String(tid)]).catch(() => {});
      await run(TGTADM, ['-C', String(this.controlPort), '--mode', 'system', '--op', 'delete'], 5000);
      const exited = await Promise.race([new Promise<boolean>((r) => c.once('exit', () => r(true))), sleep(3000).then(() => false)]);
      if (!exited && c.exitCode === null && c.signalCode === null) {
        await new Promise<void>((r) => { c.once('exit', () => r()); c.kill('SIGKILL'); });
      }
    }
    for (const f of [`/var/run/tgtd/socket.${this.controlPort}`, `/var/run/tgtd/socket.${this.controlPort}.lock`]) rmSync(f, { force: true });
  }

  /** Kills the daemon at once (a SAN that disappears); its port stays free for restart(). */
  async kill(): Promise<void> {
    const c = this.child;
    if (c.exitCode === null && c.signalCode === null) await new Promise<void>((r) => { c.once('exit', () => r()); c.kill('SIGKILL'); });
    for (const f of [`/var/run/tgtd/socket.${this.controlPort}`, `/var/run/tgtd/socket.${this.controlPort}.lock`]) rmSync(f, { force: true });
  }
}
