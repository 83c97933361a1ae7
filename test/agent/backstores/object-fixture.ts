// Shared fixture for the object backstore tests: an s3rver bucket, temp state dirs, disk-usage probes.
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import type { ObjectBackstoreSpec } from '../../../agent/backstores/object.js';

export const MiB = 1024 * 1024;

export interface Fixture {
  s3: S3rverHandle;
  stateDir: string;
  spec(name: string, extra?: Partial<ObjectBackstoreSpec>): ObjectBackstoreSpec;
  dispose(): Promise<void>;
}

export async function fixture(): Promise<Fixture> {
  const s3 = await startS3rver();
  const stateDir = await mkdtemp(join(tmpdir(), 'outpost-object-'));
  return {
    s3, stateDir,
    spec: (name, extra) => ({
      plugin: 'object', name, size: 256 * MiB, bucket: s3.bucket, prefix: `vols/${name}`, endpoint: s3.endpoint,
      force_path_style: true, cache_size: 32 * MiB, ...extra,
    }),
    async dispose() {
      await s3.dispose();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** Bytes of disk the files under `dir` occupy (allocated blocks, so sparse files count as they really are). */
export async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const p = join(dir, n);
    try {
      const s = await stat(p);
      total += s.isDirectory() ? await diskUsage(p) : s.blocks * 512;
    } catch { /* removed while walking */ }
  }
  return total;
}

/** Samples diskUsage(dir) until stopped; returns the maximum seen. */
export function watchDiskUsage(dir: string, everyMs = 15): { stop(): Promise<number> } {
  let max = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      max = Math.max(max, await diskUsage(dir));
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return { async stop() { running = false; await loop; return max; } };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Where s3rver keeps the bytes of `key` on disk (to corrupt an object as a failing disk or provider would). */
export function s3rverObjectPath(s3: S3rverHandle, key: string): string {
  const parts = key.split('/');
  const last = parts.pop()!;
  return join(s3.directory, s3.bucket, ...parts, `${last}._S3rver_object`);
}

/** Deterministic 4 KiB-style block content for (block, version): checkable later without keeping the data. */
export function blockData(block: number, version: number, size = 4096): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = (block * 2654435761 + version * 40503 + 1) >>> 0 || 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  b.writeUInt32LE(block >>> 0, 0);
  b.writeUInt32LE(version, 4);
  return b;
}
