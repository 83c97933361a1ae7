// One Outpost agent for a bench section (object, replication): its saveconfig.json (rtslib-fb schema, one
// iSCSI target on a loopback portal), its log, the daemon, the wait until a LUN answers, and one stop.
import { closeSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { cpuProfFlags, onCleanup, run, sleep, startDaemon, terminate } from './proc.js';
import { lastLines } from './parse.js';

export interface SectionAgentOptions {
  repoRoot: string;
  /** The section's own directory: saveconfig.json and agent.log go here. */
  dir: string;
  stateDir: string;
  iqn: string;
  port: number;
  /** storage_objects of the saveconfig, in rtslib-fb form. */
  storageObjects: readonly object[];
  /** LUN i maps luns[i] (a storage object path such as /backstores/object/name). */
  luns: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Extra `outpost agent` arguments (e.g. --metrics-listen). */
  args?: readonly string[];
  /** Write a V8 CPU profile of the agent into this directory (node --cpu-prof). */
  cpuProfDir?: string;
  /** Runs after the agent has stopped (dispose s3rvers, remove files); stop() runs once either way. */
  after?: () => Promise<void>;
}

export interface SectionAgent {
  readonly child: ChildProcess;
  /** `host:port` of the portal. */
  readonly portal: string;
  /** Throws `what` with the last lines of the agent's log. */
  fail(what: string): Promise<never>;
  /** Waits until `iscsi-readcapacity16` answers on LUN `lun` (the agent is up and serving it). */
  waitForLun(lun: number): Promise<void>;
  /** Stops the agent, then runs `after`; idempotent, and registered as a bench cleanup. */
  stop(): Promise<void>;
}

export async function startSectionAgent(o: SectionAgentOptions): Promise<SectionAgent> {
  const config = {
    fabric_modules: [],
    storage_objects: o.storageObjects,
    targets: [{ fabric: 'iscsi', wwn: o.iqn, tpgs: [{
      tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 },
      parameters: { AuthMethod: 'None' },
      luns: o.luns.map((storage_object, index) => ({ index, storage_object })),
      node_acls: [], portals: [{ ip_address: '127.0.0.1', port: o.port, iser: false, offload: false }],
    }] }],
  };
  const configPath = join(o.dir, 'saveconfig.json');
  await writeFile(configPath, JSON.stringify(config, null, 2));
  const logPath = join(o.dir, 'agent.log');
  const logFd = openSync(logPath, 'a');
  const child = startDaemon(process.execPath, [...cpuProfFlags(o.cpuProfDir), join(o.repoRoot, 'bin/outpost.js'), 'agent', '--config', configPath, '--state-dir', o.stateDir, ...(o.args ?? [])], logFd, o.env);
  closeSync(logFd);
  const portal = `127.0.0.1:${o.port}`;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    try {
      await terminate(child, 60_000);
    } finally {
      await o.after?.();
    }
  };
  onCleanup(stop);
  const fail = async (what: string): Promise<never> => {
    throw new Error(`${what} (agent log: ${lastLines(await readFile(logPath, 'utf8').catch(() => ''), 3)})`);
  };
  const waitForLun = async (lun: number): Promise<void> => {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null || child.signalCode !== null) await fail('agent exited');
      const r = await run('iscsi-readcapacity16', [`iscsi://${portal}/${o.iqn}/${lun}`], { timeoutMs: 5000 });
      if (r.code === 0) return;
      if (i > 60) await fail(`agent does not serve LUN ${lun} (${o.luns[lun]}): ${lastLines(r.stdout + r.stderr)}`);
      await sleep(250);
    }
  };
  return { child, portal, fail, waitForLun, stop };
}
