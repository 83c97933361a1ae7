// Long-running work of the agent (GC, snapshot copy, restore prefetch, migration, import, replication
// catch-up, the flush at stop): one registry that every such operation reports its progress to, so the
// shell, the agent's status to the gateway, the metrics and the dashboard all show the same figures.
import { EventEmitter } from 'node:events';

export type JobUnit = 'bytes' | 'chunks' | 'objects';
export type JobState = 'running' | 'done' | 'failed' | 'cancelled';

/** What every viewer sees of a job (plain data: it goes into the status frame and the admin protocol). */
export interface JobSnapshot {
  id: number;
  /** What kind of work: 'gc', 'snapshot', 'prefetch', 'migration', 'import', 'replication', 'flush', … */
  kind: string;
  /** What it works on, as the shell names it: '/backstores/object/vol1'. */
  subject: string;
  state: JobState;
  done: number;
  /** 0 while unknown. */
  total: number;
  unit: JobUnit;
  /** Units per second, smoothed over the last few seconds. */
  rate: number;
  /** Seconds left at the current rate; null while unknown. */
  eta_s: number | null;
  started: string;
  ended?: string;
  /** A short line of what it is doing now ('uploading', 'cut-over', …). */
  phase?: string;
  error?: string;
}

const RATE_WINDOW_MS = 5000;
/** Finished jobs kept for viewers that look late. */
const KEEP_ENDED = 32;

export class Job {
  private samples: Array<[number, number]> = [];
  constructor(private readonly registry: Jobs, private readonly snap: JobSnapshot) {
    this.samples.push([Date.now(), 0]);
  }

  get id(): number {
    return this.snap.id;
  }

  get state(): JobState {
    return this.snap.state;
  }

  /** Add n units of work done. */
  advance(n: number): void {
    this.set(this.snap.done + n);
  }

  /** Set the units done so far (monotone in practice; a restarted pass may set it lower). */
  set(done: number): void {
    if (this.snap.state !== 'running') return;
    this.snap.done = done;
    const now = Date.now();
    this.samples.push([now, done]);
    while (this.samples.length > 2 && now - this.samples[0]![0] > RATE_WINDOW_MS) this.samples.shift();
    this.registry.changed(this);
  }

  setTotal(total: number): void {
    this.snap.total = total;
    this.registry.changed(this);
  }

  setPhase(phase: string): void {
    this.snap.phase = phase;
    this.registry.changed(this);
  }

  finish(): void {
    this.end('done');
  }

  fail(err: unknown): void {
    this.snap.error = err instanceof Error ? err.message : String(err);
    this.end('failed');
  }

  cancel(): void {
    this.end('cancelled');
  }

  snapshot(): JobSnapshot {
    const s = { ...this.snap };
    const first = this.samples[0]!;
    const last = this.samples[this.samples.length - 1]!;
    const dt = (last[0] - first[0]) / 1000;
    s.rate = dt > 0 ? Math.max(0, (last[1] - first[1]) / dt) : 0;
    s.eta_s = s.state === 'running' && s.total > 0 && s.rate > 0 ? Math.max(0, (s.total - s.done) / s.rate) : s.state === 'done' ? 0 : null;
    return s;
  }

  private end(state: JobState): void {
    if (this.snap.state !== 'running') return;
    this.snap.state = state;
    this.snap.ended = new Date().toISOString();
    if (state === 'done' && this.snap.total > 0) this.snap.done = Math.max(this.snap.done, this.snap.total);
    this.registry.ended(this);
  }
}

/**
 * The registry. `change` fires (with the job's snapshot) on every update; viewers throttle themselves.
 * One per process (`jobs` below): backstores deep in the stack report without being handed a reference.
 */
export class Jobs extends EventEmitter {
  private nextId = 1;
  private readonly running = new Map<number, Job>();
  private readonly endedJobs: Job[] = [];

  start(kind: string, subject: string, opts: { total?: number; unit?: JobUnit; phase?: string } = {}): Job {
    const job = new Job(this, {
      id: this.nextId++,
      kind,
      subject,
      state: 'running',
      done: 0,
      total: opts.total ?? 0,
      unit: opts.unit ?? 'bytes',
      rate: 0,
      eta_s: null,
      started: new Date().toISOString(),
      ...(opts.phase ? { phase: opts.phase } : {}),
    });
    this.running.set(job.id, job);
    this.changed(job);
    return job;
  }

  get(id: number): JobSnapshot | undefined {
    return (this.running.get(id) ?? this.endedJobs.find((j) => j.id === id))?.snapshot();
  }

  /** Running jobs first (oldest first), then the recently ended ones (newest first). */
  list(filter: { subject?: string; kind?: string } = {}): JobSnapshot[] {
    const all = [...this.running.values(), ...[...this.endedJobs].reverse()];
    return all
      .map((j) => j.snapshot())
      .filter((s) => (filter.subject === undefined || s.subject === filter.subject) && (filter.kind === undefined || s.kind === filter.kind));
  }

  /** @internal */
  changed(job: Job): void {
    this.emit('change', job.snapshot());
  }

  /** @internal */
  ended(job: Job): void {
    this.running.delete(job.id);
    this.endedJobs.push(job);
    while (this.endedJobs.length > KEEP_ENDED) this.endedJobs.shift();
    this.changed(job);
  }
}

export const jobs = new Jobs();
