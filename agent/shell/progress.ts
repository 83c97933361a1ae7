// Following a job (agent/jobs.ts) from the shell client: a cli-progress bar on a TTY, and on a pipe a plain
// line every few seconds ("flush vol1: 42% 118 MB/s ETA 12s") and a last one when it ends. Detaching (Ctrl-C)
// ends the view only; the job goes on in the agent (`jobs`, `jobs wait ID`).
import cliProgress from 'cli-progress';
import { amount, etaText, jobName, progressLine, rateText } from '../job-lines.js';
import type { JobSnapshot } from '../jobs.js';
import type { ShellSession } from './session.js';

/** Exit status of a command line whose view was detached (as a shell reports SIGINT). */
export const DETACHED_EXIT = 130;

export interface FollowOptions {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Bar or plain lines; default: a bar when `out` is a TTY. */
  tty?: boolean;
  /** Plain lines: one every intervalMs (default OUTPOST_PROGRESS_INTERVAL_MS or 2000). */
  intervalMs?: number;
}

export interface Following {
  /** The exit status: 0 done, 1 failed or cancelled, DETACHED_EXIT when detached. */
  readonly done: Promise<number>;
  detach(): void;
}

function defaultInterval(): number {
  const v = Number(process.env.OUTPOST_PROGRESS_INTERVAL_MS);
  return Number.isFinite(v) && v >= 100 ? v : 2000;
}

function payload(s: JobSnapshot): Record<string, string> {
  return { name: jobName(s), rate: rateText(s), eta: s.state === 'running' ? etaText(s) : '0s', amount: `${amount(s.done, s.unit)}${s.total ? `/${amount(s.total, s.unit)}` : ''}` };
}

export function followJob(session: ShellSession, job: number, opts: FollowOptions): Following {
  const out = opts.out;
  if (!session.watch) {
    out.write(`(job ${job}: no running agent to follow)\n`);
    return { done: Promise.resolve(1), detach: () => {} };
  }
  const tty = opts.tty ?? Boolean(out.isTTY);
  let latest: JobSnapshot | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let timer: NodeJS.Timeout | undefined;
  const onFrame = (s: JobSnapshot) => {
    const first = !latest;
    latest = s;
    if (tty) {
      const total = Math.max(1, s.total);
      if (!bar) {
        bar = new cliProgress.SingleBar({
          stream: out, format: '{name} [{bar}] {percentage}% | {amount} | {rate} | ETA {eta}', barsize: Math.max(10, Math.min(40, (out.columns ?? 80) - 60)),
          hideCursor: true, clearOnComplete: false, stopOnComplete: false, fps: 10,
        }, cliProgress.Presets.shades_classic);
        bar.start(total, Math.min(s.done, total), payload(s));
      } else {
        bar.setTotal(total);
        bar.update(Math.min(s.done, total), payload(s));
      }
    } else if (first) {
      out.write(progressLine(s) + '\n');
    }
  };
  const w = session.watch(job, onFrame);
  if (!tty) {
    timer = setInterval(() => latest && latest.state === 'running' && out.write(progressLine(latest) + '\n'), opts.intervalMs ?? defaultInterval());
  }
  const end = (s: JobSnapshot | undefined): number => {
    if (timer) clearInterval(timer);
    if (!s) {
      bar?.stop();
      out.write(`Stopped watching job ${job}; it goes on (jobs wait ${job}).\n`);
      return DETACHED_EXIT;
    }
    if (bar) {
      if (s.state === 'done') bar.update(Math.max(1, s.total), payload(s));
      bar.stop();
    }
    out.write(progressLine(s) + '\n');
    return s.state === 'done' ? 0 : 1;
  };
  const done = w.done.then(end, (e: Error) => {
    if (timer) clearInterval(timer);
    bar?.stop();
    out.write(`${e.message}\n`);
    return 1;
  });
  return { done, detach: w.detach };
}
