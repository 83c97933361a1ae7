// Benchmark plumbing: bounded child processes, /proc sampling, and teardown that also runs on Ctrl-C.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseProcStatTicks, parseProcStatusKiB } from './parse.js';

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  wallMs: number;
  /** Set when the program could not be started at all (ENOENT…). */
  spawnError?: string;
}

export interface RunOptions {
  timeoutMs: number;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

const live = new Set<ChildProcess>();

/** Kills a child: SIGTERM first (tools such as iscsi-perf finish cleanly on it), SIGKILL after graceMs. */
export function terminate(child: ChildProcess, graceMs = 3000): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Runs a program to completion, capturing output, killing it when it outlives timeoutMs. */
export function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let spawnError: string | undefined;
    child.stdout!.setEncoding('latin1').on('data', (s: string) => { stdout += s; });
    child.stderr!.setEncoding('latin1').on('data', (s: string) => { stderr += s; });
    const timer = setTimeout(() => {
      timedOut = true;
      void terminate(child);
    }, opts.timeoutMs);
    child.on('error', (err) => { spawnError = err.message; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      resolve({ code, signal, stdout, stderr, timedOut, wallMs: performance.now() - started, spawnError });
    });
  });
}

/** Starts a long-running process (a target daemon); its output goes to the given file descriptor. */
/** Node flags that make a child write a V8 CPU profile into `dir` when it exits (none without a dir). */
export function cpuProfFlags(dir: string | undefined): string[] {
  return dir ? ['--cpu-prof', '--cpu-prof-dir', resolve(dir)] : [];
}

export function startDaemon(cmd: string, args: readonly string[], logFd: number | 'ignore', env?: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(cmd, args, { env: env ?? process.env, stdio: ['ignore', logFd, logFd] });
  live.add(child);
  child.on('exit', () => live.delete(child));
  return child;
}

/** Last-resort cleanup: SIGKILL every child still running (used from the 'exit' handler, which must be sync). */
export function killAllChildrenSync(): void {
  for (const c of live) {
    try { c.kill('SIGKILL'); } catch { /* already gone */ }
  }
}

type CleanupFn = () => Promise<void> | void;
const cleanups: CleanupFn[] = [];
let cleaning: Promise<void> | undefined;

/** Registers a teardown step; steps run in reverse order, once, on normal end, error or signal. */
export function onCleanup(fn: CleanupFn): void {
  cleanups.push(fn);
}

export function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const fn = cleanups.pop()!;
      try { await fn(); } catch (err) { console.error(`cleanup: ${err instanceof Error ? err.message : String(err)}`); }
    }
  })();
  return cleaning;
}

/** Installs SIGINT/SIGTERM/SIGHUP handlers that tear everything down before exiting. */
export function installSignalTeardown(): void {
  const handler = (sig: NodeJS.Signals) => {
    console.error(`\n${sig}: tearing down…`);
    const hard = setTimeout(() => { killAllChildrenSync(); process.exit(130); }, 15_000);
    hard.unref();
    void runCleanups().finally(() => { killAllChildrenSync(); process.exit(130); });
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  process.on('SIGHUP', handler);
  process.on('exit', killAllChildrenSync);
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try { clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100; } catch { clkTck = 100; }
  }
  return clkTck;
}

/** User + system CPU seconds consumed so far by a process (all its threads). */
export async function cpuSeconds(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/stat`, 'latin1');
  return parseProcStatTicks(text) / ticksPerSecond();
}

/** VmRSS and VmHWM (peak) of a process, in KiB. */
export async function memoryKiB(pid: number): Promise<{ rss: number; hwm: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'latin1');
  const kv = parseProcStatusKiB(text);
  return { rss: kv.VmRSS ?? NaN, hwm: kv.VmHWM ?? NaN };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
