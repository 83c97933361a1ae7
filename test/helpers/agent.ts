// Starts a real Outpost agent for integration tests: from a config object, in a temp state dir, on loopback.
// spawnAgent runs `node bin/outpost.js agent …` as a child process; startAgentInProcess calls startAgent().
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { silentLogger } from '../../agent/lib/log.js';
import { startAgent, type Agent } from '../../agent/main.js';

export const REPO = resolve(import.meta.dirname, '../../..');
export const BIN = join(REPO, 'bin/outpost.js');

export interface AgentDirs {
  dir: string;
  stateDir: string;
  configPath: string;
}

export async function tempAgentDirs(config?: object): Promise<AgentDirs> {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-agent-'));
  const configPath = join(dir, 'saveconfig.json');
  if (config) await writeFile(configPath, JSON.stringify(config, null, 2));
  return { dir, stateDir: join(dir, 'state'), configPath };
}

export interface SpawnedAgent extends AgentDirs {
  proc: ChildProcess;
  stderr(): string;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(): Promise<number | null>;
  /** Stops (if running) and removes the temp dir. */
  cleanup(): Promise<void>;
}

/** Spawns the agent process and waits until its admin socket answers. */
export async function spawnAgent(opts: { config?: object; dirs?: AgentDirs; env?: NodeJS.ProcessEnv; args?: string[] } = {}): Promise<SpawnedAgent> {
  const dirs = opts.dirs ?? (await tempAgentDirs(opts.config));
  const proc = spawn(process.execPath, [BIN, 'agent', '--config', dirs.configPath, '--state-dir', dirs.stateDir, ...(opts.args ?? [])], {
    env: { ...process.env, OUTPOST_LOG_LEVEL: process.env.OUTPOST_LOG_LEVEL ?? 'info', ...opts.env },
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const sock = join(dirs.stateDir, 'admin.sock');
  const deadline = Date.now() + 15_000;
  while (!(existsSync(sock) && err.includes('agent started'))) {
    if (proc.exitCode !== null) throw new Error(`agent exited with ${proc.exitCode}: ${err}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`agent did not start: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    return exited;
  };
  return {
    ...dirs, proc, stderr: () => err, stop,
    async cleanup() {
      await stop();
      await rm(dirs.dir, { recursive: true, force: true });
    },
  };
}

export interface InProcessAgent extends AgentDirs {
  agent: Agent;
  cleanup(): Promise<void>;
}

export async function startAgentInProcess(opts: { config?: object; dirs?: AgentDirs; admin?: boolean } = {}): Promise<InProcessAgent> {
  const dirs = opts.dirs ?? (await tempAgentDirs(opts.config));
  const agent = await startAgent({ configPath: dirs.configPath, stateDir: dirs.stateDir, log: silentLogger, admin: opts.admin });
  return {
    ...dirs, agent,
    async cleanup() {
      await agent.stop();
      await rm(dirs.dir, { recursive: true, force: true });
    },
  };
}

/** Runs `node bin/outpost.js --state-dir DIR …args` (command-line mode) and collects its output. */
export async function outpost(stateDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const proc = spawn(process.execPath, [BIN, '--state-dir', stateDir, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  return { code, stdout, stderr };
}
