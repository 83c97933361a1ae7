// Runs one workload once against one target with the real tool, bounded in time, and measures the target's CPU.
import { run, cpuSeconds, type RunResult } from './proc.js';
import { parseIscsiPerf, parseQemuBench, parseNegotiatedKeys, lastLines } from './parse.js';
import { GiB, iscsiUrl, RHEL_TPG_PARAMETERS, type Endpoint, type TargetUnderTest } from './target.js';
import type { Workload } from './workloads.js';

const MiB = 1024 * 1024;
/** Prime stride (in I/Os) for qemu-img bench "random" writes: coprime with the 1 GiB LUN's block count, so it visits every block once per lap. */
export const RANDOM_STRIDE_IOS = 25013;

export interface Sample {
  /** In the workload's unit (IOPS or MiB/s). */
  value: number;
  bytes: number;
  /** CPU seconds the target process used during the run, when its pid is known. */
  targetCpu?: number;
  negotiated: Record<string, string>;
}

export interface RunContext {
  /** Seconds per measured run. */
  duration: number;
  initiatorName: string;
  /** IOPS seen per workload/target, to size qemu-img bench's request count to the duration. */
  rates: Map<string, number>;
}

export function iscsiPerfArgs(w: Workload, e: Endpoint, blockSize: number, seconds: number, initiator: string): string[] {
  if (w.ioBytes % blockSize !== 0) throw new Error(`I/O size ${w.ioBytes} is not a multiple of the block size ${blockSize}`);
  return ['-i', initiator, '-m', String(w.depth), '-b', String(w.ioBytes / blockSize), '-t', String(seconds), ...(w.random ? ['-r'] : []), iscsiUrl(e)];
}

export function qemuBenchArgs(w: Workload, e: Endpoint, count: number, initiator: string): string[] {
  const digest = w.digest ? 'crc32c' : 'none';
  const opts = [
    'driver=raw', 'file.driver=iscsi', 'file.transport=tcp', `file.portal=${e.portal}`, `file.target=${e.iqn}`,
    `file.lun=${e.lun}`, `file.initiator-name=${initiator}`, `file.header-digest=${digest}`,
  ].join(',');
  return [
    // Writes carry a non-zero pattern (qemu's default is zeros): an object LUN stores no chunk of zeros, so zero
    // writes would make its uploads look free.
    'bench', ...(w.write ? ['-w', '--pattern=165'] : []), '-t', 'none', '-c', String(count), '-d', String(w.depth), '-s', String(w.ioBytes),
    ...(w.random ? ['-S', String(w.ioBytes * RANDOM_STRIDE_IOS)] : []), '--image-opts', opts,
  ];
}

function toolFailure(tool: string, r: RunResult): Error {
  if (r.spawnError) return new Error(`${tool} could not start: ${r.spawnError}`);
  if (r.timedOut) return new Error(`${tool} timed out after ${Math.round(r.wallMs / 1000)} s`);
  return new Error(`${tool} exit ${r.code ?? r.signal}: ${lastLines(r.stdout + '\n' + r.stderr)}`);
}

/** libiscsi reports the login answer at debug level 6; it tells whether digests were really in use. */
const DEBUG_ENV = { ...process.env, LIBISCSI_DEBUG: '6' };

function checkDigest(w: Workload, negotiated: Record<string, string>): void {
  const want = w.digest ? 'CRC32C' : 'None';
  const got = negotiated.HeaderDigest;
  if (got === undefined) throw new Error('could not see the negotiated HeaderDigest in the libiscsi log');
  if (got.toUpperCase() !== want.toUpperCase()) throw new Error(`negotiated HeaderDigest=${got}, expected ${want}`);
  // A '-rhel' row measures nothing unless the target really answered with those keys. A declarative key
  // the target leaves out takes its RFC 7143 default (tgt never declares MaxRecvDataSegmentLength: 8192).
  if (w.lun === 'file-rhel') {
    for (const [k, v] of Object.entries(RHEL_TPG_PARAMETERS)) {
      const got = negotiated[k] ?? RFC_DEFAULTS[k];
      if (got !== v) throw new Error(`negotiated ${k}=${got ?? '(not sent)'}, expected ${v} (RHEL TPG defaults)`);
    }
  }
}

/** RFC 7143 §13 defaults of the declarative keys a login reply may omit. */
const RFC_DEFAULTS: Readonly<Record<string, string>> = { MaxRecvDataSegmentLength: '8192' };

export async function runOnce(w: Workload, t: TargetUnderTest, ctx: RunContext): Promise<Sample> {
  const e = t.endpoint(w.lun, w.digest);
  if (typeof e === 'string') throw new Error(e);
  const key = `${w.id}/${t.name}`;
  if (w.tool === 'qemu-bench' && !ctx.rates.has(key)) await calibrate(w, e, t, ctx);
  if (w.tool === 'iscsi-perf') return runPerf(w, e, t, ctx);
  const iops = ctx.rates.get(key)!;
  const count = Math.max(w.depth * 20, Math.min(5_000_000, Math.round(iops * ctx.duration)));
  const s = await runQemu(w, e, count, ctx, t.pid);
  ctx.rates.set(key, s.value * (w.unit === 'IOPS' ? 1 : MiB / w.ioBytes));
  return s;
}

/** qemu-img bench takes a count: a short run tells how many requests fill the duration (and warms up). */
async function calibrate(w: Workload, e: Endpoint, t: TargetUnderTest, ctx: RunContext): Promise<void> {
  const c = await runQemu(w, e, w.ioBytes <= 4096 ? 4000 : 800, ctx, t.pid);
  ctx.rates.set(`${w.id}/${t.name}`, c.value * (w.unit === 'IOPS' ? 1 : MiB / w.ioBytes));
}

/**
 * A discarded run of about `seconds` before a row's measured runs, so that no row pays for what the
 * previous one left behind (cold JIT paths, other pages in the page cache, a different queue depth) —
 * the first row of a run was the slowest before. qemu rows calibrate here on their first use.
 */
export async function warmUp(w: Workload, t: TargetUnderTest, ctx: RunContext, seconds: number): Promise<void> {
  const e = t.endpoint(w.lun, w.digest);
  if (typeof e === 'string' || seconds <= 0) return;
  if (w.tool === 'iscsi-perf') {
    await runPerf(w, e, t, { ...ctx, duration: seconds });
    return;
  }
  const key = `${w.id}/${t.name}`;
  if (!ctx.rates.has(key)) return calibrate(w, e, t, ctx);
  await runQemu(w, e, Math.max(w.depth * 20, Math.round(ctx.rates.get(key)! * seconds)), ctx, t.pid);
}

async function runPerf(w: Workload, e: Endpoint, t: TargetUnderTest, ctx: RunContext): Promise<Sample> {
  const args = iscsiPerfArgs(w, e, t.blockSize, ctx.duration, ctx.initiatorName);
  const cpu0 = t.pid ? await cpuSeconds(t.pid) : undefined;
  const r = await run('iscsi-perf', args, { timeoutMs: (ctx.duration + 20) * 1000, env: DEBUG_ENV });
  const cpu1 = t.pid ? await cpuSeconds(t.pid) : undefined;
  if (r.code !== 0 || r.timedOut) throw toolFailure('iscsi-perf', r);
  const p = parseIscsiPerf(r.stdout);
  if (p.bytesPerIo !== w.ioBytes) throw new Error(`iscsi-perf used ${p.bytesPerIo}-byte requests, expected ${w.ioBytes}`);
  const negotiated = parseNegotiatedKeys(r.stderr + r.stdout);
  checkDigest(w, negotiated);
  const bytes = p.iops * p.bytesPerIo * ctx.duration;
  return { value: w.unit === 'IOPS' ? p.iops : (p.iops * p.bytesPerIo) / MiB, bytes, targetCpu: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined, negotiated };
}

async function runQemu(w: Workload, e: Endpoint, count: number, ctx: RunContext, pid: number | undefined): Promise<Sample> {
  const args = qemuBenchArgs(w, e, count, ctx.initiatorName);
  const cpu0 = pid ? await cpuSeconds(pid) : undefined;
  const r = await run('qemu-img', args, { timeoutMs: Math.max(30, ctx.duration * 8) * 1000, env: DEBUG_ENV });
  const cpu1 = pid ? await cpuSeconds(pid) : undefined;
  if (r.code !== 0 || r.timedOut) throw toolFailure('qemu-img bench', r);
  const q = parseQemuBench(r.stdout);
  const negotiated = parseNegotiatedKeys(r.stderr + r.stdout);
  checkDigest(w, negotiated);
  return {
    value: w.unit === 'IOPS' ? q.iops : (q.iops * q.bytesPerIo) / MiB,
    bytes: q.count * q.bytesPerIo,
    targetCpu: cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined,
    negotiated,
  };
}

/** CPU seconds per GiB moved for one sample. */
export function cpuPerGiB(s: Sample): number | undefined {
  return s.targetCpu === undefined || s.bytes <= 0 ? undefined : s.targetCpu / (s.bytes / GiB);
}
