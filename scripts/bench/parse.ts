// Parsers for the real output of the benchmark tools (iscsi-perf, qemu-img bench, iperf3, libiscsi debug) and /proc.

export interface IscsiPerfResult {
  iops: number;
  /** Bytes per request, as iscsi-perf reports it ("transfer size of N blocks (B byte)"). */
  bytesPerIo: number;
  random: boolean;
}

/**
 * iscsi-perf prints progress lines separated by '\r' and, when the run ends, a final
 * "iops average N (M MB/s)" line followed by "finished.". Only a run that reached
 * "finished." with a final average counts; anything else is an error with the tool's own words.
 */
export function parseIscsiPerf(stdout: string): IscsiPerfResult {
  const text = stdout.replace(/\r/g, '\n');
  const size = /transfer size of (\d+) blocks \((\d+) byte\)/i.exec(text);
  const mode = /performing (RANDOM|SEQUENTIAL) READ/i.exec(text);
  if (!size || !mode) throw new Error(`iscsi-perf did not start: ${lastLines(text)}`);
  if (!/\bfinished\./.test(text)) throw new Error(`iscsi-perf did not finish: ${lastLines(text)}`);
  const averages = [...text.matchAll(/^iops average (\d+) \(\d+ MB\/s\)/gm)];
  const last = averages.at(-1);
  if (!last) throw new Error(`iscsi-perf printed no final average: ${lastLines(text)}`);
  return { iops: Number(last[1]), bytesPerIo: Number(size[2]), random: mode[1]!.toUpperCase() === 'RANDOM' };
}

export interface QemuBenchResult {
  count: number;
  bytesPerIo: number;
  depth: number;
  write: boolean;
  seconds: number;
  iops: number;
}

/** qemu-img bench: "Sending N write requests, S bytes each, D in parallel …" then "Run completed in T seconds." */
export function parseQemuBench(stdout: string): QemuBenchResult {
  const head = /Sending (\d+) (read|write) requests, (\d+) bytes each, (\d+) in parallel/.exec(stdout);
  const done = /Run completed in ([\d.]+) seconds\./.exec(stdout);
  if (!head || !done) throw new Error(`qemu-img bench did not complete: ${lastLines(stdout)}`);
  const count = Number(head[1]);
  const seconds = Number(done[1]);
  if (!(seconds > 0)) throw new Error(`qemu-img bench reported a zero duration (count ${count} too small)`);
  return { count, bytesPerIo: Number(head[3]), depth: Number(head[4]), write: head[2] === 'write', seconds, iops: count / seconds };
}

/** iperf3 -J: the receiver's average rate in bytes per second. */
export function parseIperf3Json(json: string): number {
  let doc: { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
  try { doc = JSON.parse(json) as typeof doc; } catch { throw new Error(`iperf3 printed no JSON: ${lastLines(json)}`); }
  if (doc.error) throw new Error(`iperf3: ${doc.error}`);
  const bps = doc.end?.sum_received?.bits_per_second;
  if (typeof bps !== 'number' || !(bps > 0)) throw new Error('iperf3 JSON has no end.sum_received.bits_per_second');
  return bps / 8;
}

/**
 * Login keys the target answered, from libiscsi's debug log (LIBISCSI_DEBUG>=6):
 * "libiscsi:6 TargetLoginReply: HeaderDigest=CRC32C [iqn…]". Later answers win.
 */
export function parseNegotiatedKeys(stderr: string): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const m of stderr.matchAll(/TargetLoginReply: ([A-Za-z0-9_.]+)=([^\s\[]*)/g)) keys[m[1]!] = m[2]!;
  return keys;
}

/** utime + stime (clock ticks) from /proc/<pid>/stat; the command name may contain spaces and ')'. */
export function parseProcStatTicks(stat: string): number {
  const close = stat.lastIndexOf(')');
  if (close < 0) throw new Error('malformed /proc/<pid>/stat');
  const fields = stat.slice(close + 2).trim().split(/\s+/);
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('malformed /proc/<pid>/stat');
  return utime + stime;
}

/** The "Key:   N kB" lines of /proc/<pid>/status, in KiB. */
export function parseProcStatusKiB(status: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of status.matchAll(/^(\w+):\s+(\d+) kB$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

export function parseCpuModel(cpuinfo: string): string {
  return /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown CPU';
}

/** Block length from iscsi-readcapacity16 ("LOGICAL BLOCK LENGTH IN BYTES:512"). */
export function parseReadCapacity16(stdout: string): { blockSize: number; bytes: number } {
  const bs = /LOGICAL BLOCK LENGTH IN BYTES:(\d+)/.exec(stdout);
  const total = /Total size:(\d+)/.exec(stdout);
  if (!bs || !total) throw new Error(`iscsi-readcapacity16 failed: ${lastLines(stdout)}`);
  return { blockSize: Number(bs[1]), bytes: Number(total[1]) };
}

/** The last non-empty lines of a tool's output, for error messages. */
export function lastLines(text: string, n = 2): string {
  const lines = text.replace(/\r/g, '\n').split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.slice(-n).join(' / ').slice(0, 300) || '(no output)';
}
