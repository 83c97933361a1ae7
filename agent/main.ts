// Composition root of the agent (DESIGN "Layers"): load saveconfig.json, reconcile it into backstores,
// logical units and portals, serve the admin API, and accept gateway policy as managed ACLs.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { PolicySnapshot } from '../shared/policy.js';
import { adminSocketPath } from './admin/protocol.js';
import { startAdminServer, type AdminServer } from './admin/server.js';
import { dumpConfig } from './config/dump.js';
import { loadConfig } from './config/load.js';
import { applyManagedAcls, checkPolicyFits, cloneWithoutManaged, inventoryOf, revokedAcls, validatePolicy } from './config/managed.js';
import { portalKey, Runtime } from './config/reconcile.js';
import { LiveRegistry } from './config/registry.js';
import { iscsiTargets, storageObjectPath, type RootConfig } from './config/schema.js';
import { readConfigFile, saveConfigFile } from './config/store.js';
import { IscsiServer, type SessionInfo } from './iscsi/server.js';
import type { DiscoveryAuth } from './iscsi/target-registry.js';
import { logJobs } from './job-log.js';
import { jobs, type JobSnapshot } from './jobs.js';
import { createLogger, type Logger } from './lib/log.js';
import type { AgentMetrics } from './metrics/agent-metrics.js';
import { countingCore } from './metrics/core-counters.js';
import { bothCounters, IoRates } from './metrics/io-rates.js';
import { loginReason } from './metrics/login-reasons.js';
import { createTargetCore } from './scsi/core.js';
import { ShellEngine } from './shell/engine.js';
import { runCommand } from './sites/agent-commands.js';
import { requestMigration, type GatewayRequester } from './sites/migration-request.js';
import { promoteCommand } from './sites/promote.js';
import { attachObjectSites, probeVolume } from './sites/restore.js';
import { preloadObjectBackstore } from './backstores/index.js';
import { ShellError, type ShellHost } from './shell/host.js';
import { PrefsStore } from './shell/prefs-store.js';
import { TunnelManager, describeTunnel } from './tunnel/manager.js';
import { lockStateDir, type StateDirLock } from './state-lock.js';
import { SnapshotScheduler } from './sites/schedule.js';

export interface AgentOptions {
  configPath: string;
  stateDir: string;
  log?: Logger;
  /** Serve the local admin API (default true). */
  admin?: boolean;
  /** Gateway policy in force from the start (the cached one), so the portals open with its ACLs. */
  policy?: PolicySnapshot;
  /** Per-LUN and login counters (--metrics-listen); absent: nothing is counted. */
  metrics?: AgentMetrics;
}

export interface AgentStatus {
  sessions: SessionInfo[];
  luns: Array<{ path: string; plugin: string; healthy: boolean; error?: string; stats?: Record<string, number | string | null>; io?: { read_bps: number; write_bps: number } }>;
  portals: string[];
  policyVersion: number | null;
  /** Refused logins since start, by reason (authentication_failure = CHAP): the dashboard shows them. */
  loginFailures: Record<string, number>;
  /** Long work running or recently ended (agent/jobs.ts), newest few: the dashboard's jobs panel. */
  jobs: JobSnapshot[];
}

export interface Agent {
  readonly registry: LiveRegistry;
  readonly server: IscsiServer;
  readonly tunnels: TunnelManager;
  readonly configPath: string;
  readonly stateDir: string;
  readonly adminPath?: string;
  model(): RootConfig;
  /** Replaces the running configuration (validated; nothing changes on error). */
  commit(next: RootConfig): Promise<void>;
  saveconfig(path?: string): Promise<string>;
  setManagedPolicy(p: PolicySnapshot): void;
  servedTargets(): string[];
  inventory(): ReturnType<typeof inventoryOf>;
  status(): AgentStatus;
  /** One gateway control command (shared/control-commands.ts), run by agent/sites/agent-commands.ts. */
  command(op: string, args: Record<string, unknown>): Promise<unknown>;
  /** The control link, once started: the shell's `migrate` asks the gateway through it. */
  setGatewayLink(link: GatewayRequester): void;
  stop(): Promise<void>;
}

/** Running jobs and those ended in the last 10 minutes, at most 8: the status stays small. */
function recentJobs(): JobSnapshot[] {
  const since = Date.now() - 600_000;
  return jobs.list().filter((j) => j.state === 'running' || Date.parse(j.ended ?? '') >= since).slice(0, 8);
}

function discoveryOf(p: PolicySnapshot): DiscoveryAuth | undefined {
  const d = p.discovery_auth;
  return d ? { enabled: d.enable, chap: { userid: d.userid, password: d.password, mutualUserid: d.mutual_userid ?? '', mutualPassword: d.mutual_password ?? '' } } : undefined;
}

export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const stateDir = resolvePath(opts.stateDir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  // Before the config, the caches or the bucket are touched: a second agent here would sweep the bucket
  // under the running one and replay its journal.
  const lock = await lockStateDir(stateDir);
  try {
    return await startLocked(opts, stateDir, lock);
  } catch (e) {
    await lock.release();
    throw e;
  }
}

async function startLocked(opts: AgentOptions, stateDir: string, lock: StateDirLock): Promise<Agent> {
  const log = opts.log ?? createLogger('outpost-agent');
  const configPath = resolvePath(opts.configPath);
  const { root: initial, exists } = await readConfigFile(configPath);
  if (!exists) log.info({ configPath }, 'no saved configuration; starting empty');

  let model = initial;
  let generation = 0;
  let policy: PolicySnapshot | undefined;
  let managedDiscovery: DiscoveryAuth | undefined;
  if (opts.policy) {
    try {
      validatePolicy(opts.policy);
      policy = opts.policy;
      managedDiscovery = discoveryOf(policy);
    } catch (e) {
      log.warn({ err: (e as Error).message }, 'initial gateway policy ignored');
    }
  }
  let server: IscsiServer | undefined;
  const runtime = new Runtime({ stateDir, log, portalHost: () => server, attach: (path, so, b) => attachObjectSites(path, so, b, log) });
  const registry = new LiveRegistry({
    model: () => model,
    generation: () => generation,
    unit: (path) => runtime.units.get(path)?.lu,
    managedDiscovery: () => managedDiscovery,
  });
  // Always counted: the status carries each LUN's throughput for the dashboard's charts.
  const io = new IoRates();
  const core = countingCore(createTargetCore({ log }), bothCounters(io, opts.metrics));
  const loginFailures: Record<string, number> = {};
  const loginFailed = (status: number): void => {
    const reason = loginReason(status);
    loginFailures[reason] = (loginFailures[reason] ?? 0) + 1;
    opts.metrics?.loginFailed(status);
  };
  server = new IscsiServer({ registry, core, log, counters: { loginFailed } });
  const tunnels = new TunnelManager(server, log);

  // Serialize every change: admin commands, policy pushes, shutdown.
  let chain: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn, fn);
    chain = p.catch(() => {});
    return p;
  };

  const swap = async (next: RootConfig, strict: boolean): Promise<void> => {
    const plan = await runtime.prepare(next, strict);
    const before = model;
    const targetsBefore = iscsiTargets(model).map((t) => t.wwn);
    applyManagedAcls(next, policy); // the policy may have changed while this change was queued
    model = next;
    generation++;
    await runtime.commit(plan);
    for (const [target, initiator] of revokedAcls(before, model)) {
      const n = server!.closeSessions(target, initiator);
      if (n) log.info({ target, initiator, sessions: n }, 'ACL removed or its credentials changed: sessions closed');
    }
    for (const t of targetsBefore) if (!iscsiTargets(model).some((x) => x.wwn.toLowerCase() === t.toLowerCase())) server!.closeSessions(t);
    tunnels.reconcile(model);
  };

  /** Validates a candidate model (with the cached policy applied) without touching the running one. */
  const prepareModel = (next: RootConfig): RootConfig => {
    const local = loadConfig(dumpConfig(next));
    applyManagedAcls(local, policy);
    return local;
  };

  await swap(prepareModel(initial), false);

  const prefs = new PrefsStore(join(stateDir, 'prefs.json'));
  const snapshotSchedule = new SnapshotScheduler({ model: () => model, backstore: (p) => runtime.units.get(p)?.lu?.backstore, log });
  let stopped = false;
  let gatewayLink: GatewayRequester | undefined;
  const agent: Agent = {
    registry,
    server,
    tunnels,
    configPath,
    stateDir,
    model: () => model,
    commit: (next) => serialized(() => swap(prepareModel(next), true)),
    saveconfig: (path) => saveConfigFile(path ?? configPath, model),
    setManagedPolicy(p: PolicySnapshot) {
      validatePolicy(p);
      checkPolicyFits(model, p);
      const next = cloneWithoutManaged(model);
      applyManagedAcls(next, p);
      // Managed ACLs reference TPG LUNs by number and open nothing, so the swap itself cannot fail;
      // it is applied synchronously so callers can ack right after this returns.
      const before = model;
      policy = p;
      managedDiscovery = discoveryOf(p);
      model = next;
      generation++;
      // New logins already see the new ACLs; ending the revoked sessions waits one turn of the event
      // loop so a huge policy does not hold it for the comparison as well as for the swap.
      const after = model;
      setImmediate(() => {
        for (const [target, initiator] of revokedAcls(before, after)) {
          const n = server!.closeSessions(target, initiator);
          if (n) log.info({ target, initiator, sessions: n }, 'managed ACL removed or its credentials changed: sessions closed');
        }
      });
      log.info({ version: p.version }, 'managed policy applied');
    },
    servedTargets: () => iscsiTargets(model).map((t) => t.wwn),
    inventory: () => inventoryOf(model),
    status(): AgentStatus {
      return {
        sessions: server!.sessions(),
        luns: model.storage_objects.map((so) => {
          const e = runtime.units.get(storageObjectPath(so));
          const path = storageObjectPath(so);
          return { path, plugin: so.plugin, healthy: Boolean(e?.lu), error: e?.error, stats: e?.lu?.backstore.stats?.(), io: io.rates(e?.lu?.name ?? path) };
        }),
        portals: [...runtime.portals.keys()],
        policyVersion: policy?.version ?? null,
        loginFailures: { ...loginFailures },
        jobs: recentJobs(),
      };
    },
    setGatewayLink(l) {
      gatewayLink = l;
    },
    command: (op, args) => runCommand({ model: () => model, commit: agent.commit, unit: (p) => runtime.units.get(p)?.lu, sessions: () => server!.sessions(),
      shell: (line) => commandEngine.exec({ line }), log, stateDir }, op, args),
    async stop() {
      if (stopped) return;
      stopped = true;
      snapshotSchedule.stop();
      await serialized(async () => {
        await admin?.close();
        tunnels.closeAll();
        await server!.close();
        await runtime.closeAll();
        await lock.release();
      });
      unlogJobs();
      log.info('agent stopped');
    },
  };

  // Long work (the flush at stop among it) shows in the log as periodic progress lines.
  const unlogJobs = logJobs(log, jobs);
  const host: ShellHost = {
    configPath,
    model: () => model,
    commit: agent.commit,
    save: agent.saveconfig,
    soInfo(path) {
      const e = runtime.units.get(path);
      if (!e) return undefined;
      return e.error ? { error: e.error } : { size: e.lu?.backstore.size, stats: e.lu?.backstore.stats?.() };
    },
    probeVolume: (loc) => probeVolume(loc),
    migrate: (subject, body) => requestMigration(gatewayLink, subject, body, log),
    async soAction(path, action, args) {
      const e = runtime.units.get(path);
      if (action !== 'promote') throw new Error(`unknown action ${action}`);
      return promoteCommand(e?.lu?.backstore, path, args.force === 'true', e?.error);
    },
    portalListening: (ip, port) => runtime.portals.has(portalKey(ip, port)),
    backstore: (path) => runtime.units.get(path)?.lu?.backstore,
    prefs: () => prefs.all(),
    setPref: (n, v) => prefs.set(n, v),
    status() {
      const s = agent.status();
      return [
        `Sessions: ${s.sessions.length}`,
        `Portals listening: ${s.portals.join(', ') || 'none'}`,
        ...s.luns.map((l) => `${l.path}: ${l.healthy ? 'ok' : `ERROR ${l.error ?? 'not open'}`}${l.stats ? ' ' + JSON.stringify(l.stats) : ''}`),
        `Gateway policy version: ${s.policyVersion ?? 'none'}`,
      ];
    },
    jobs: () => jobs.list(),
    flushToBucket(path) {
      const e = runtime.units.get(path);
      const b = e?.lu?.backstore;
      if (!b) throw new ShellError(`${path} is not open${e?.error ? `: ${e.error}` : ''}.`);
      if (!b.syncToBucket) throw new ShellError(`${path} has no bucket to flush to.`);
      const dirtyBytes = Number(b.stats?.().dirty_bytes) || 0;
      return { job: b.syncToBucket().job, dirtyBytes };
    },
    tunnelInfo(target, tag, url) {
      const s = tunnels.status(target, tag).find((x) => x.url === url);
      return s && describeTunnel(s);
    },
    sessions() {
      const list = server!.sessions();
      if (list.length === 0) return ['(no open sessions)'];
      return list.map((s) => `alias: ${s.initiatorName}\tsid: ${s.tsih} type: ${s.type} target: ${s.targetName} tpgt: ${s.tpgt} connections: ${s.connections.map((c) => `${c.remote}->${c.local.ip}:${c.local.port}`).join(', ')}`);
    },
  };

  const commandEngine = new ShellEngine(host);
  let admin: AdminServer | undefined;
  if (opts.admin !== false) {
    try {
      admin = await startAdminServer({ path: adminSocketPath(stateDir), engine: new ShellEngine(host), configPath, log });
      await writeFile(join(stateDir, 'agent.json'), JSON.stringify({ configPath, pid: process.pid }, null, 2) + '\n', { mode: 0o600 });
    } catch (err) {
      unlogJobs();
      tunnels.closeAll();
      await server.close();
      await runtime.closeAll();
      throw err;
    }
  }
  (agent as { adminPath?: string }).adminPath = admin?.path;
  snapshotSchedule.start();
  log.info({ configPath, targets: agent.servedTargets().length, portals: [...runtime.portals.keys()] }, 'agent started');
  preloadObjectBackstore(log);
  return agent;
}
