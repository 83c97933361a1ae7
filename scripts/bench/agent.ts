// The Outpost agent under test: an rtslib-schema saveconfig.json with fileio + rd_mcp LUNs on loopback portals.
import { existsSync, openSync, closeSync } from 'node:fs';
import { writeFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { freePort } from '../../test/helpers/net.js';
import { cpuProfFlags, run, startDaemon, terminate, sleep, onCleanup } from './proc.js';
import { parseReadCapacity16, lastLines } from './parse.js';
import { GiB, iscsiUrl, RHEL_TPG_PARAMETERS, type Endpoint, type LunKind, type TargetUnderTest } from './target.js';

const PLAIN_IQN = 'iqn.2024-01.dev.outpost.bench:agent-plain';
const DIGEST_IQN = 'iqn.2024-01.dev.outpost.bench:agent-digest';
const RHEL_IQN = 'iqn.2024-01.dev.outpost.bench:agent-rhel';

export interface AgentOptions {
  repoRoot: string;
  workDir: string;
  /** Backing file of the fileio LUN (already sized). */
  filePath: string;
  /** Write a V8 CPU profile of the agent into this directory (node --cpu-prof). */
  cpuProfDir?: string;
  /** Extra environment variables for the agent process. */
  env?: Record<string, string>;
}

interface PortalSpec { port: number; iqn: string; digest: boolean; /** Extra TPG parameters; with them the target maps only the file LUN. */ parameters?: Record<string, string> }

/** The saveconfig.json the agent is started with (rtslib-fb schema, as targetcli on RHEL writes it). */
export function benchSaveconfig(filePath: string, portals: readonly PortalSpec[]): object {
  const tpg = (p: PortalSpec) => ({
    tag: 1,
    enable: true,
    attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 },
    parameters: {
      AuthMethod: 'None',
      HeaderDigest: p.digest ? 'CRC32C' : 'None',
      DataDigest: p.digest ? 'CRC32C' : 'None',
      ...p.parameters,
    },
    luns: p.digest || p.parameters
      ? [{ index: 0, storage_object: '/backstores/fileio/bench_file' }]
      : [
          { index: 0, storage_object: '/backstores/fileio/bench_file' },
          { index: 1, storage_object: '/backstores/ramdisk/bench_rd' },
        ],
    node_acls: [],
    portals: [{ ip_address: '127.0.0.1', port: p.port, iser: false, offload: false }],
  });
  return {
    fabric_modules: [],
    storage_objects: [
      { plugin: 'fileio', name: 'bench_file', dev: filePath, size: GiB, write_back: true, wwn: '5e1f0c2a-0b3e-4d6a-9f1e-000000000001', attributes: { block_size: 512 } },
      { plugin: 'rd_mcp', name: 'bench_rd', size: GiB, nullio: false, wwn: '5e1f0c2a-0b3e-4d6a-9f1e-000000000002', attributes: { block_size: 512 } },
    ],
    targets: portals.map((p) => ({ fabric: 'iscsi', wwn: p.iqn, tpgs: [tpg(p)] })),
  };
}

class Agent implements TargetUnderTest {
  readonly name = 'agent';
  unavailable: string | undefined;
  pid: number | undefined;
  blockSize = 512;
  notes: string[] = [];
  plainPortal = '';
  digestPortal = '';
  rhelPortal = '';
  child: ChildProcess | undefined;

  endpoint(lun: LunKind, digest: boolean): Endpoint | string {
    if (lun === 'ram' && digest) return 'no digest ramdisk target configured';
    if (lun === 'file-rhel') return digest ? 'no digest RHEL-defaults target configured' : { portal: this.rhelPortal, iqn: RHEL_IQN, lun: 0 };
    return digest
      ? { portal: this.digestPortal, iqn: DIGEST_IQN, lun: 0 }
      : { portal: this.plainPortal, iqn: PLAIN_IQN, lun: lun === 'file' ? 0 : 1 };
  }
}

export async function startAgent(opts: AgentOptions): Promise<TargetUnderTest> {
  const a = new Agent();
  const cli = join(opts.repoRoot, 'dist/agent/cli.js');
  if (!existsSync(cli)) {
    a.unavailable = 'agent not built yet (dist/agent/cli.js missing)';
    return a;
  }
  const plain = await freePort();
  let digest = await freePort();
  while (digest === plain) digest = await freePort();
  let rhel = await freePort();
  while (rhel === plain || rhel === digest) rhel = await freePort();
  a.plainPortal = `127.0.0.1:${plain}`;
  a.digestPortal = `127.0.0.1:${digest}`;
  a.rhelPortal = `127.0.0.1:${rhel}`;
  const stateDir = join(opts.workDir, 'agent-state');
  await mkdir(stateDir, { recursive: true });
  const configPath = join(opts.workDir, 'saveconfig.json');
  const config = benchSaveconfig(opts.filePath, [
    { port: plain, iqn: PLAIN_IQN, digest: false },
    { port: digest, iqn: DIGEST_IQN, digest: true },
    { port: rhel, iqn: RHEL_IQN, digest: false, parameters: { ...RHEL_TPG_PARAMETERS } },
  ]);
  await writeFile(configPath, JSON.stringify(config, null, 2));

  const logPath = join(opts.workDir, 'agent.log');
  const logFd = openSync(logPath, 'a');
  a.child = startDaemon(process.execPath, [...cpuProfFlags(opts.cpuProfDir), join(opts.repoRoot, 'bin/outpost.js'), 'agent', '--config', configPath, '--state-dir', stateDir], logFd, {
    ...process.env,
    OUTPOST_LOG_LEVEL: process.env.OUTPOST_LOG_LEVEL ?? 'warn',
    ...opts.env,
  });
  closeSync(logFd);
  a.pid = a.child.pid;
  onCleanup(async () => {
    // SIGTERM: the agent completes in-flight commands and exits (which also writes the --cpu-prof file).
    if (a.child) await terminate(a.child, 10_000);
  });

  const logTail = async () => lastLines(await readFile(logPath, 'utf8').catch(() => ''), 3);
  const url = iscsiUrl(a.endpoint('file', false) as Endpoint);
  let last = '';
  for (let i = 0; i < 60; i++) {
    if (a.child.exitCode !== null || a.child.signalCode !== null) {
      a.unavailable = `agent exited (${a.child.exitCode ?? a.child.signalCode}): ${await logTail()}`;
      return a;
    }
    const r = await run('iscsi-readcapacity16', [url], { timeoutMs: 5000 });
    try {
      a.blockSize = parseReadCapacity16(r.stdout + r.stderr).blockSize;
      a.notes.push(`agent ${a.plainPortal} (digest target ${a.digestPortal}, RHEL-defaults target ${a.rhelPortal}): fileio LUN (write_back true) on a file in the temp dir; rd_mcp LUN in agent memory.`);
      return a;
    } catch {
      last = lastLines(r.stdout + r.stderr);
      await sleep(250);
    }
  }
  a.unavailable = `agent does not serve the LUN after 15 s (iscsi-readcapacity16: ${last}; log: ${await logTail()})`;
  return a;
}
