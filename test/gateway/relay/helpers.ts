// Test helpers for tunnels: spawn `outpost relay` as a real process on loopback, write token files, and
// an agent config whose TPGs reach the multipath test LU through relays (outpost_tunnels).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';

export interface SpawnedRelay {
  host: string;
  portal: number;
  listen: number;
  url: string;
  tokenFile: string;
  proc: ChildProcess;
  log(): string;
  /** SIGTERM (or the signal given) and wait for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the same relay again on the same ports (after stop). */
  restart(): Promise<SpawnedRelay>;
}

export async function tempDir(): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-relay-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function writeToken(dir: string, name: string, lines: string[]): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, lines.join('\n') + '\n', { mode: 0o600 });
  return p;
}

// A relay outlives nothing that started it: if a test process ends without its after hook (a crash,
// the runner's timeout), the relays it spawned are killed with it.
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

/** Spawns a relay on `host` with free ports (or the given ones) and waits for "relay listening". */
export async function spawnRelay(opts: { host?: string; tokenFile: string; portal?: number; listen?: number; extra?: string[] }): Promise<SpawnedRelay> {
  const host = opts.host ?? '127.0.0.1';
  const portal = opts.portal ?? (await freePort(host));
  const listen = opts.listen ?? (await freePort(host));
  const proc = spawn(process.execPath, [BIN, 'relay', '--portal', `${host}:${portal}`, '--listen', `${host}:${listen}`, '--token-file', opts.tokenFile, ...(opts.extra ?? [])], {
    env: { ...process.env, OUTPOST_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  live.add(proc);
  let log = '';
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => {
    live.delete(proc);
    r();
  }));
  const deadline = Date.now() + 15_000;
  while (!log.includes('relay listening')) {
    if (proc.exitCode !== null) throw new Error(`relay exited with ${proc.exitCode}: ${log}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`relay did not start: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const self: SpawnedRelay = {
    host, portal, listen, url: `ws://${host}:${listen}/`, tokenFile: opts.tokenFile, proc,
    log: () => log,
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
    restart: () => spawnRelay({ ...opts, host, portal, listen }),
  };
  return self;
}

/** Polls `cond` until it holds or `ms` passes; returns whether it held. */
export async function until(cond: () => boolean | Promise<boolean>, ms: number, stepMs = 100): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return cond();
}
