// Loader for the optional fast-io addon (agent/native/fast-io.c: preadv2 with RWF_NOWAIT, batched pwritev).
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../lib/log.js';

export interface FastIo {
  /** Fills `buf` from `pos` only if the data is in the page cache: bytes read, or a negative errno. */
  readNowait(fd: number, buf: Buffer, pos: number): number;
  /**
   * Runs `n` pwritevs on one threadpool job, in order: write i is the next `counts[i]` buffers of
   * `bufs` at `positions[i]` of file `fds[i]`; `results[i]` receives its bytes written or -errno; `done` runs on the
   * event loop afterwards. Throws (having written nothing) on malformed arguments.
   */
  writeBatch(fds: Int32Array, bufs: readonly Uint8Array[], counts: Uint32Array, positions: Float64Array, results: Float64Array, n: number, done: (ok: boolean) => void): void;
  /** A writer: one thread of its own that runs submitted batches in order (absent in an older build). */
  createWriter?(): unknown;
  /** As writeBatch, on `writer`'s thread, after every batch submitted to it before. Throws once closed. */
  writerSubmit?(writer: unknown, fds: Int32Array, bufs: readonly Uint8Array[], counts: Uint32Array, positions: Float64Array, results: Float64Array, n: number, done: (ok: boolean) => void): void;
  /** The writer takes no more batches; its thread ends after running those queued (their `done` still runs). */
  writerClose?(writer: unknown): void;
  readonly EAGAIN: number;
}

/** Built in place by `npm ci` (agent/native/build.mjs); this file runs from dist/agent/native/. */
export const FAST_IO_PATH = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../..'), 'agent/native/build/Release/fast_io.node');

let cached: { io: FastIo | undefined } | undefined;

/**
 * Loads the addon once per process. Absent, unloadable or disabled (OUTPOST_FAST_IO=0) means
 * undefined and one log line; callers then use the threadpool path, which is always correct.
 */
export function fastIo(log?: Logger): FastIo | undefined {
  if (cached) return cached.io;
  cached = { io: loadFastIo(FAST_IO_PATH, log) };
  return cached.io;
}

/** Loads the addon at `path` (no caching; tests use it on bad paths). */
export function loadFastIo(path: string, log?: Logger): FastIo | undefined {
  if (process.env.OUTPOST_FAST_IO === '0') {
    log?.info('fast-io disabled (OUTPOST_FAST_IO=0): fileio reads use the threadpool');
    return undefined;
  }
  try {
    const io = createRequire(import.meta.url)(path) as FastIo;
    if (typeof io.readNowait !== 'function' || typeof io.writeBatch !== 'function') throw new Error('readNowait/writeBatch missing (stale build: npm run build)');
    return io;
  } catch (err) {
    log?.warn({ path, err: (err as Error).message }, 'fast-io addon not loaded: fileio reads use the threadpool');
    return undefined;
  }
}
