// The agent's log follows its long work: a progress line per running job every few seconds and one when it
// ends, so an operator stopping an agent with GiB dirty (journalctl -f) sees the flush advance.
import { progressLine } from './job-lines.js';
import type { JobSnapshot, Jobs } from './jobs.js';
import type { Logger } from './lib/log.js';

export function logJobs(log: Logger, registry: Jobs, intervalMs = 2000): () => void {
  const last = new Map<number, number>();
  const onChange = (s: JobSnapshot) => {
    const now = Date.now();
    const fields = { job: s.id, kind: s.kind, subject: s.subject, state: s.state, done: s.done, total: s.total, rate: Math.round(s.rate) };
    if (s.state !== 'running') {
      last.delete(s.id);
      (s.state === 'failed' ? log.warn : log.info).call(log, fields, progressLine(s));
      return;
    }
    const t = last.get(s.id);
    if (t === undefined) {
      last.set(s.id, now);
      log.info(fields, `${progressLine(s)} started`);
    } else if (now - t >= intervalMs) {
      last.set(s.id, now);
      log.info(fields, progressLine(s));
    }
  };
  registry.on('change', onChange);
  return () => registry.off('change', onChange);
}
