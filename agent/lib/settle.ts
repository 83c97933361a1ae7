// Waiting for parallel pieces of one I/O: all of them, even when one fails early.

/**
 * Waits for every promise, then resolves with their values or rejects with the first failure. Promise.all
 * rejects at the first failure while the other pieces still run — and still read the caller's buffers,
 * which the caller may reuse as soon as its write has failed (receive slabs, agent/lib/recv-slabs.ts).
 */
export async function settleAll<T>(jobs: readonly Promise<T>[]): Promise<T[]> {
  const results = await Promise.allSettled(jobs);
  const out: T[] = [];
  for (const r of results) {
    if (r.status === 'rejected') throw r.reason;
    out.push(r.value);
  }
  return out;
}
