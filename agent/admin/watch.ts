// The admin API's `watch` op: progress frames of one job (agent/jobs.ts), at most one per WATCH_FRAME_MS, and a
// final frame when it ends. A watch is only a view: ending it (unwatch, Ctrl-C, a closed socket) leaves the job be.
import type { JobSnapshot, Jobs } from '../jobs.js';
import { WATCH_FRAME_MS, type AdminResponse } from './protocol.js';

export function watchJob(registry: Jobs, reqId: number, jobId: unknown, send: (r: AdminResponse) => void): () => void {
  const first = typeof jobId === 'number' ? registry.get(jobId) : undefined;
  if (!first) {
    send({ id: reqId, ok: false, message: `No job ${String(jobId)}.` });
    return () => {};
  }
  if (first.state !== 'running') {
    send({ id: reqId, ok: true, progress: first, final: true });
    return () => {};
  }
  send({ id: reqId, ok: true, progress: first });
  let lastSent = Date.now();
  let trailing: NodeJS.Timeout | undefined;
  let latest: JobSnapshot = first;
  const stop = () => {
    registry.off('change', onChange);
    if (trailing) clearTimeout(trailing);
    trailing = undefined;
  };
  const flushLatest = () => {
    trailing = undefined;
    lastSent = Date.now();
    send({ id: reqId, ok: true, progress: latest });
  };
  const onChange = (s: JobSnapshot) => {
    if (s.id !== first.id) return;
    latest = s;
    if (s.state !== 'running') {
      stop();
      send({ id: reqId, ok: true, progress: s, final: true });
      return;
    }
    const wait = WATCH_FRAME_MS - (Date.now() - lastSent);
    if (wait <= 0) flushLatest();
    else trailing ??= setTimeout(flushLatest, wait);
  };
  registry.on('change', onChange);
  return stop;
}
