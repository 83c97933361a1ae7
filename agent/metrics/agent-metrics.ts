// The agent's one Prometheus registry (prom-client, not the global default): counters fed by the data
// path through the small interfaces handed down, gauges collected on scrape from the agent's status.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { FabricCounters } from '../iscsi/context.js';
import type { IoOp, LunCounters } from './core-counters.js';
import { loginReason } from './login-reasons.js';

/** What a scrape reads from the running agent (agent/main.ts and the control link provide it). */
export interface MetricsSource {
  sessions(): ReadonlyArray<{ targetName: string; type: string; tpgt: number; connections: ReadonlyArray<{ local: { ip: string; port: number } }> }>;
  luns(): ReadonlyArray<{ path: string; plugin: string; healthy: boolean; stats?: Record<string, number | string | null> }>;
  /** Portals the configuration asks for ("ip:port"), and those actually listening. */
  configuredPortals(): string[];
  listeningPortals(): string[];
  policyVersion(): number | null;
  /** Undefined when the agent runs without a gateway. */
  controlLink(): { gateway: string; connected: boolean; appliedVersion: number } | undefined;
}

// Histogram buckets from 50 µs (a RAM hit) to 10 s (an S3 fetch behind a full cache).
const IO_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];

/** Every function of `s` evaluated at most once. */
function memoized(s: MetricsSource): MetricsSource {
  const cache = new Map<string, unknown>();
  const once = <K extends keyof MetricsSource>(k: K): MetricsSource[K] => (() => {
    if (!cache.has(k)) cache.set(k, (s[k] as () => unknown)());
    return cache.get(k);
  }) as MetricsSource[K];
  return { sessions: once('sessions'), luns: once('luns'), configuredPortals: once('configuredPortals'), listeningPortals: once('listeningPortals'), policyVersion: once('policyVersion'), controlLink: once('controlLink') };
}

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

export class AgentMetrics implements LunCounters, FabricCounters {
  readonly registry = new Registry();
  private source: MetricsSource | undefined;
  /** The source as one scrape sees it: each figure read once (stats() walks the whole cache). */
  private current: MetricsSource | undefined;
  private readonly ops: Counter<'lun' | 'op'>;
  private readonly bytes: Record<'read' | 'write', Counter<'lun'>>;
  private readonly duration: Histogram<'lun' | 'op'>;
  private readonly errors: Counter<'lun' | 'sense_key'>;
  private readonly loginFailures: Counter<'reason'>;
  /** Per-LU children, so the data path does not hash label objects on every command. */
  private readonly children = new Map<string, { ops: { inc(): void }; dur: { observe(v: number): void } }>();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.ops = new Counter({ name: 'outpost_lun_operations_total', help: 'SCSI commands completed per logical unit (op: read/write medium access, other)', labelNames: ['lun', 'op'], registers });
    this.bytes = {
      read: new Counter({ name: 'outpost_lun_read_bytes_total', help: 'Bytes read from the logical unit by initiators (Data-In of medium reads)', labelNames: ['lun'], registers }),
      write: new Counter({ name: 'outpost_lun_write_bytes_total', help: 'Bytes written to the logical unit by initiators (Data-Out of medium writes)', labelNames: ['lun'], registers }),
    };
    this.duration = new Histogram({ name: 'outpost_lun_io_duration_seconds', help: 'Time from delivery to the target core to the command status', labelNames: ['lun', 'op'], buckets: IO_BUCKETS, registers });
    this.errors = new Counter({ name: 'outpost_lun_errors_total', help: 'Commands ended with CHECK CONDITION, by sense key', labelNames: ['lun', 'sense_key'], registers });
    this.loginFailures = new Counter({ name: 'outpost_iscsi_login_failures_total', help: 'iSCSI logins refused, by login status (RFC 7143 §11.13.5)', labelNames: ['reason'], registers });
    this.defineScrapeGauges(registers);
  }

  /** The running agent the scrape-time gauges read. */
  attach(source: MetricsSource): void {
    this.source = source;
  }

  completed(lun: string, op: IoOp, bytes: number, seconds: number): void {
    let c = this.children.get(`${lun}\n${op}`);
    if (!c) this.children.set(`${lun}\n${op}`, (c = { ops: this.ops.labels(lun, op), dur: this.duration.labels(lun, op) }));
    c.ops.inc();
    c.dur.observe(seconds);
    if (bytes > 0 && op !== 'other') this.bytes[op].labels(lun).inc(bytes);
  }

  checkCondition(lun: string, senseKey: string): void {
    this.errors.labels(lun, senseKey).inc();
  }

  loginFailed(status: number): void {
    this.loginFailures.labels(loginReason(status)).inc();
  }

  metrics(): Promise<string> {
    // Kept until the next scrape replaces it, so overlapping scrapes never see a half-cleared source.
    this.current = this.source && memoized(this.source);
    return this.registry.metrics();
  }

  private defineScrapeGauges(registers: Registry[]): void {
    const src = (): MetricsSource | undefined => this.current;
    new Gauge({
      name: 'outpost_iscsi_sessions', help: 'Open iSCSI sessions per target and session type', labelNames: ['target', 'type'], registers,
      collect() {
        this.reset();
        for (const s of src()?.sessions() ?? []) this.labels(s.targetName || '', s.type).inc();
      },
    });
    new Gauge({
      name: 'outpost_iscsi_connections', help: 'Open iSCSI connections per target and portal (the local address they arrived on)', labelNames: ['target', 'portal'], registers,
      collect() {
        this.reset();
        for (const s of src()?.sessions() ?? []) for (const c of s.connections) this.labels(s.targetName || '', `${c.local.ip}:${c.local.port}`).inc();
      },
    });
    new Gauge({
      name: 'outpost_path_up', help: 'A configured path (portal) is listening: 1 up, 0 down', labelNames: ['kind', 'path'], registers,
      collect() {
        this.reset();
        const s = src();
        if (!s) return;
        const listening = new Set(s.listeningPortals());
        for (const p of new Set([...s.configuredPortals(), ...listening])) this.labels('portal', p).set(listening.has(p) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'outpost_lun_healthy', help: 'The storage object is open and serving: 1, or 0 when it failed to open', labelNames: ['lun', 'plugin'], registers,
      collect() {
        this.reset();
        for (const l of src()?.luns() ?? []) this.labels(l.path, l.plugin).set(l.healthy ? 1 : 0);
      },
    });
    this.objectGauges(registers, src);
    new Gauge({
      name: 'outpost_control_link_up', help: 'The control link to the gateway is connected: 1, or 0 (absent without --gateway)', labelNames: ['gateway'], registers,
      collect() {
        this.reset();
        const l = src()?.controlLink();
        if (l) this.labels(l.gateway).set(l.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'outpost_policy_applied_version', help: 'Version of the gateway policy in force (0 when none was ever applied)', registers,
      collect() {
        this.reset();
        const v = src()?.policyVersion();
        if (v !== null && v !== undefined) this.set(v);
      },
    });
  }

  /** Object LUN figures, read from the same Backstore.stats() that `info` shows. */
  private objectGauges(registers: Registry[], src: () => MetricsSource | undefined): void {
    const objectLuns = () => (src()?.luns() ?? []).filter((l) => l.plugin === 'object' && l.stats);
    const perLun = (kind: 'gauge' | 'counter', name: string, help: string, value: (s: Record<string, number | string | null>) => number | undefined): void => {
      const collect = function (this: Gauge<'lun'> | Counter<'lun'>): void {
        this.reset();
        for (const l of objectLuns()) {
          const v = value(l.stats!);
          if (v === undefined) continue;
          if (this instanceof Gauge) this.labels(l.path).set(v);
          else this.labels(l.path).inc(v);
        }
      };
      if (kind === 'gauge') new Gauge({ name, help, labelNames: ['lun'], registers, collect });
      else new Counter({ name, help, labelNames: ['lun'], registers, collect });
    };
    const gauge = perLun.bind(null, 'gauge');
    // Upstream totals are counted by the bucket client; a scrape copies them (they restart from 0 when the
    // backstore reopens, which Prometheus' rate() treats as a counter reset).
    const counter = perLun.bind(null, 'counter');
    gauge('outpost_object_cache_size_bytes', 'Configured local cache size of the object LUN', (s) => num(s.cache_size));
    gauge('outpost_object_cached_bytes', 'Bytes of the object LUN held in the local cache (clean and dirty)', (s) => num(s.cached_bytes));
    gauge('outpost_object_dirty_bytes', 'Bytes written locally and not yet uploaded to the bucket', (s) => num(s.dirty_bytes));
    gauge('outpost_object_recovery_point_seconds', 'Age of the oldest dirty data (the RPO if the site were lost now)', (s) => (num(s.oldest_dirty_age_ms) ?? 0) / 1000);
    gauge('outpost_object_cache_hit_ratio', 'Cache hits / lookups since the LUN opened', (s) => num(s.hit_ratio));
    gauge('outpost_object_uploads_in_flight', 'Chunk uploads currently running', (s) => num(s.uploads_in_flight));
    counter('outpost_object_uploaded_bytes_total', 'Bytes uploaded to the bucket since the LUN opened', (s) => num(s.bytes_uploaded));
    counter('outpost_object_downloaded_bytes_total', 'Bytes fetched from the bucket since the LUN opened', (s) => num(s.bytes_downloaded));
    counter('outpost_object_put_requests_total', 'S3 PUT requests since the LUN opened', (s) => num(s.put_count));
    counter('outpost_object_get_requests_total', 'S3 GET requests since the LUN opened', (s) => num(s.get_count));
    // Bucket requests by outcome: errors rise while the bucket is unreachable (alert on their rate).
    new Counter({
      name: 'outpost_object_requests_total', help: 'S3 requests of the object LUN since it opened, by operation and outcome (ok, error; a GET of a missing object is ok)',
      labelNames: ['lun', 'op', 'outcome'], registers,
      collect() {
        this.reset();
        for (const l of objectLuns()) {
          for (const op of ['put', 'get', 'delete', 'list'] as const) {
            const all = num(l.stats![`${op}_count`]);
            const errors = num(l.stats![`${op}_errors`]);
            if (all === undefined || errors === undefined) continue;
            this.labels(l.path, op, 'ok').inc(all - errors);
            this.labels(l.path, op, 'error').inc(errors);
          }
        }
      },
    });
    gauge('outpost_object_upload_error', '1 while the flusher or cache reports an error (last_error in info), else 0', (s) => (s.last_error === null || s.last_error === undefined ? 0 : 1));
    // Replication (docs/replication.md): present only for LUNs with a replica.
    gauge('outpost_replica_recovery_point_seconds', 'Age of the newest generation complete at the replica (the RPO if the primary site were lost now)', (s) => num(s.replica_recovery_point_s));
    gauge('outpost_replica_bytes_behind', 'Bytes uploaded to the primary bucket that the replica does not hold yet', (s) => num(s.replica_bytes_behind));
    gauge('outpost_replica_error', '1 while replication reports an error (replica last error in info), else 0', (s) => (s.replica_state === undefined ? undefined : s.replica_last_error ? 1 : 0));
  }
}
