// A flush of an object volume (the admin's `flush`, and the one at agent stop) reported as a 'flush' job in
// agent/jobs.ts: total = the dirty bytes at its start, done = how much of that has left the cache since.
import { jobs, type Job } from '../../jobs.js';

const POLL_MS = 250;

export interface FlushJob {
  readonly job: Job;
  /** Takes a last reading and ends the polling (the caller finishes or fails the job). */
  stop(): void;
}

export function startFlushJob(subject: string, phase: string, dirtyBytes: () => number): FlushJob {
  const total = dirtyBytes();
  const job = jobs.start('flush', subject, { total, unit: 'bytes', phase });
  let done = 0;
  const read = () => {
    // Writes during the flush add dirty bytes; progress never goes backwards because of them.
    done = Math.min(total, Math.max(done, total - dirtyBytes()));
    job.set(done);
  };
  const timer = setInterval(read, POLL_MS);
  timer.unref();
  return {
    job,
    stop() {
      clearInterval(timer);
      read();
    },
  };
}
