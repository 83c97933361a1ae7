// Issue 16 bench rows: the same LUN of one agent through a direct portal and through `outpost relay` on
// loopback (one tunnel), 4 KiB random read QD32 and 128 KiB sequential read QD32, alternating, as the
// ratio relay/direct, with the relay's CPU per GiB. Standalone: node dist/scripts/bench/relay.js [--quick]
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { freePort } from '../../test/helpers/net.js';
import { cpuSeconds, onCleanup, run, sleep, startDaemon, terminate } from './proc.js';
import { lastLines } from './parse.js';
import { cpuPerGiB, runOnce, warmUp, type RunContext, type Sample } from './runner.js';
import { fillFile, type Endpoint, type TargetUnderTest } from './target.js';
import { WORKLOADS } from './workloads.js';
import { runStandalone } from './standalone.js';
import { fmt, median, pairedSpread } from './report.js';

const MiB = 1024 * 1024;
const IQN = 'iqn.2024-01.dev.outpost.bench:relay';
const LUN_SIZE = 256 * MiB;

export interface RelayBenchOptions {
  repoRoot: string;
  workDir: string;
  duration: number;
  reps: number;
  initiatorName: string;
}

function target(name: string, portal: string, pid: number | undefined): TargetUnderTest {
  return { name, unavailable: undefined, pid, blockSize: 512, notes: [], endpoint: (): Endpoint => ({ portal, iqn: IQN, lun: 0 }) };
}

/** Runs the relay rows; returns a markdown section. Stops its agent and relay and removes its files itself. */
export async function relayBench(o: RelayBenchOptions): Promise<string> {
  const dir = await mkdtemp(join(o.workDir, 'relay-'));
  const stateDir = join(dir, 'state');
  await mkdir(stateDir, { recursive: true });
  const token = randomBytes(24).toString('hex');
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, token + '\n', { mode: 0o600 });
  const [directPort, relayPortal, relayListen] = [await freePort(), await freePort(), await freePort()];
  const filePath = join(dir, 'lun.img');
  await fillFile(filePath, LUN_SIZE);
  const config = {
    fabric_modules: [],
    storage_objects: [{ plugin: 'fileio', name: 'rl_file', dev: filePath, size: LUN_SIZE, write_back: true, wwn: '5e1f0c2a-0b3e-4d6a-9f1e-0000000000b1', attributes: { block_size: 512 } }],
    targets: [{ fabric: 'iscsi', wwn: IQN, tpgs: [{
      tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 },
      parameters: { AuthMethod: 'None' },
      luns: [{ index: 0, storage_object: '/backstores/fileio/rl_file' }],
      node_acls: [], portals: [{ ip_address: '127.0.0.1', port: directPort, iser: false, offload: false }],
      outpost_tunnels: [{ url: `ws://127.0.0.1:${relayListen}/`, advertise: `127.0.0.1:${relayPortal}`, token_file: tokenFile }],
    }] }],
  };
  const configPath = join(dir, 'saveconfig.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const logPath = join(dir, 'daemons.log');
  const logFd = openSync(logPath, 'a');
  const env = { ...process.env, OUTPOST_LOG_LEVEL: process.env.OUTPOST_LOG_LEVEL ?? 'warn' };
  const bin = join(o.repoRoot, 'bin/outpost.js');
  const relay = startDaemon(process.execPath, [bin, 'relay', '--portal', `127.0.0.1:${relayPortal}`, '--listen', `127.0.0.1:${relayListen}`, '--token-file', tokenFile], logFd, env);
  const agent = startDaemon(process.execPath, [bin, 'agent', '--config', configPath, '--state-dir', stateDir], logFd, env);
  closeSync(logFd);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await terminate(agent, 30_000);
    await terminate(relay, 10_000);
    await rm(dir, { recursive: true, force: true });
  };
  onCleanup(stop);
  const fail = async (what: string): Promise<never> => {
    throw new Error(`${what} (log: ${lastLines(await readFile(logPath, 'utf8').catch(() => ''), 3)})`);
  };

  try {
    const direct = `127.0.0.1:${directPort}`;
    const relayed = `127.0.0.1:${relayPortal}`;
    for (const portal of [direct, relayed]) {
      for (let i = 0; ; i++) {
        if (agent.exitCode !== null || relay.exitCode !== null) await fail('agent or relay exited');
        const r = await run('iscsi-readcapacity16', [`iscsi://${portal}/${IQN}/0`], { timeoutMs: 5000 });
        if (r.code === 0) break;
        if (i > 80) await fail(`no LUN at ${portal}: ${lastLines(r.stdout + r.stderr)}`);
        await sleep(250);
      }
    }
    const targets = [target('direct', direct, agent.pid), target('relay', relayed, agent.pid)];
    const ctx: RunContext = { duration: o.duration, initiatorName: o.initiatorName, rates: new Map() };
    const rows: Array<{ label: string; unit: string; direct?: number; relay?: number; spread: string; relayCpu?: number; agentDirect?: number; agentRelay?: number }> = [];
    for (const id of ['rr4k', 'sr128k']) {
      const w = WORKLOADS.find((x) => x.id === id);
      if (!w) throw new Error(`workload ${id} not defined in scripts/bench/workloads.ts`);
      const samples: Record<string, Sample[]> = { direct: [], relay: [] };
      const relayCpu: number[] = [];
      for (const t of targets) await warmUp(w, t, ctx, Math.min(2, o.duration)); // discarded, as in the main rows
      for (let rep = 1; rep <= o.reps; rep++) {
        for (const t of targets) {
          const c0 = relay.pid ? await cpuSeconds(relay.pid) : 0;
          const s = await runOnce(w, t, ctx);
          const c1 = relay.pid ? await cpuSeconds(relay.pid) : 0;
          samples[t.name]!.push(s);
          if (t.name === 'relay' && s.bytes > 0) relayCpu.push((c1 - c0) / (s.bytes / (1024 * MiB)));
          console.error(`[relay ${id}] ${t.name} run ${rep}/${o.reps}: ${fmt(s.value, s.value < 10 ? 2 : 0)} ${w.unit}`);
        }
      }
      const cpu = (xs: Sample[]) => median(xs.map(cpuPerGiB).filter((x): x is number => x !== undefined));
      rows.push({
        label: w.label.replace(/^file: /, ''), unit: w.unit,
        direct: median(samples.direct!.map((s) => s.value)), relay: median(samples.relay!.map((s) => s.value)),
        spread: pairedSpread(samples.relay!.map((s) => s.value), samples.direct!.map((s) => s.value)),
        relayCpu: median(relayCpu), agentDirect: cpu(samples.direct!), agentRelay: cpu(samples.relay!),
      });
    }
    const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b ? (a / b).toFixed(2) : 'n/a');
    return [
      '',
      '### Through a relay (issue 16)',
      '',
      `One agent, one fileio LUN (${LUN_SIZE / MiB} MiB), reached through a direct portal and through \`outpost relay\` on loopback (one tunnel, ws://); ${o.reps} runs each after a discarded warm-up, median, alternating direct/relay; relay/direct (lowest–highest of run i's relay over its direct).`,
      '',
      '| workload | direct | relay | relay/direct | relay CPU s/GiB | agent CPU s/GiB direct / relay |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...rows.map((r) => `| ${r.label} | ${fmt(r.direct)} ${r.unit} | ${fmt(r.relay)} ${r.unit} | ${ratio(r.relay, r.direct)}${r.spread} | ${fmt(r.relayCpu, 2)} | ${fmt(r.agentDirect, 2)} / ${fmt(r.agentRelay, 2)} |`),
      '',
    ].join('\n');
  } finally {
    await stop();
  }
}

runStandalone(import.meta.url, 'relay', relayBench);
