// docs/dr.md §Prefetch: a restoring agent fetches the chunks the primary's heat map names hottest first, in the
// background, yielding to initiators' reads (it waits while any read had to go to the bucket within idle_ms),
// and reports its progress as a 'prefetch' job (agent/jobs.ts) and an `info` line.
import type { Logger } from '../lib/log.js';
import { jobs } from '../jobs.js';
import { loadHeat, type HeatSource } from './heat-map.js';

/** What prefetch needs of an object backstore (ObjectBackstore implements it). */
export interface PrefetchTarget extends HeatSource {
  readonly size: number;
  readonly cacheBytes: number;
  readonly foregroundIdleMs: number;
  warmChunk(index: number): Promise<boolean>;
  addStats(fn: () => Record<string, string>): void;
}

export interface PrefetchOptions {
  /** Shell path of the LUN's backstore (the job's subject). */
  path: string;
  log: Logger;
  /** Chunks fetched at once, default 2. */
  concurrency?: number;
  /** Foreground quiet time before the next background fetch, default 100 ms. */
  idleMs?: number;
  /** Share of the cache prefetch may fill, default 0.75: the rest stays for what initiators read now. */
  cacheShare?: number;
}

export interface PrefetchResult { planned: number; fetched: number; bytes: number; ms: number }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

/** Starts the prefetch in the background; it stops when the backstore closes. */
export function startPrefetch(t: PrefetchTarget, o: PrefetchOptions): { done: Promise<PrefetchResult | null>; stop(): void } {
  let stopped = false;
  let line = 'reading the heat map';
  t.addStats(() => ({ prefetch: line }));
  const done = (async (): Promise<PrefetchResult | null> => {
    const heat = await loadHeat(t, o.log);
    if (!heat || heat.chunk_size !== t.chunkSize || heat.chunks.length === 0) {
      line = heat ? 'none (the heat map does not fit this volume)' : 'none (no heat map in the bucket)';
      return null;
    }
    const count = Math.ceil(t.size / t.chunkSize);
    const budget = Math.max(1, Math.floor((t.cacheBytes / t.chunkSize) * (o.cacheShare ?? 0.75)));
    const order = heat.chunks.map(([i]) => i).filter((i) => i < count).slice(0, budget);
    const total = order.length * t.chunkSize;
    const job = jobs.start('prefetch', o.path, { total, unit: 'bytes', phase: `hottest ${order.length} chunks of the heat map (epoch ${heat.epoch})` });
    const t0 = performance.now();
    let next = 0;
    let fetched = 0;
    let doneBytes = 0;
    const show = (): void => {
      const rate = doneBytes / Math.max(0.001, (performance.now() - t0) / 1000);
      line = `running: ${next}/${order.length} chunks (${mib(doneBytes)} of ${mib(total)}), ${mib(rate)}/s`;
    };
    const idle = o.idleMs ?? 100;
    const worker = async (): Promise<void> => {
      while (!stopped && next < order.length) {
        // Initiators first: a read that just went to the bucket means someone is waiting for data.
        while (!stopped && t.foregroundIdleMs < idle) await sleep(idle / 2);
        if (stopped) return;
        const index = order[next++]!;
        if (await t.warmChunk(index)) fetched++;
        doneBytes += t.chunkSize;
        job.advance(t.chunkSize);
        show();
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.max(1, o.concurrency ?? 2) }, worker));
    } catch (e) {
      line = `failed: ${(e as Error).message}`;
      job.fail(e);
      o.log.warn({ err: (e as Error).message }, 'prefetch failed; chunks are still fetched on demand');
      return null;
    }
    const ms = performance.now() - t0;
    if (stopped) {
      line = `stopped at ${next}/${order.length} chunks`;
      job.cancel();
      return { planned: order.length, fetched, bytes: fetched * t.chunkSize, ms };
    }
    job.finish();
    line = `done: ${order.length} hottest chunks in ${(ms / 1000).toFixed(1)} s (${fetched} fetched, ${mib(fetched * t.chunkSize)})`;
    o.log.info({ chunks: order.length, fetched, ms: Math.round(ms) }, 'prefetch done');
    return { planned: order.length, fetched, bytes: fetched * t.chunkSize, ms };
  })();
  const stop = (): void => { stopped = true; };
  t.onClose(async () => { stop(); await done.catch(() => undefined); });
  return { done, stop };
}
