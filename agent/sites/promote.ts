// docs/writer-lease.md §Promotion: a reader LUN becomes the volume's writer without an agent restart —
// gracefully once the holder has released the lease, or forced (the next epoch fences a live holder).
import type { Backstore } from '../backstores/backstore.js';
import type { PromoteOutcome } from '../backstores/object.js';
import { jobs } from '../jobs.js';

export type { PromoteOutcome };

/** What promotion needs of a backstore: the object backstore implements it; other plugins have no lease. */
export interface Promotable {
  readonly readOnly: boolean;
  readonly role: string;
  promote(o: { force?: boolean }): Promise<PromoteOutcome>;
  whenLeaseReleased(o?: { pollMs?: number; signal?: AbortSignal }): Promise<unknown>;
}

export function promotable(b: Backstore | undefined): Promotable | null {
  const p = b as Partial<Promotable> | undefined;
  return p && b!.plugin === 'object' && typeof p.promote === 'function' && typeof p.whenLeaseReleased === 'function' ? (p as Promotable) : null;
}

function need(b: Backstore | undefined, path: string): Promotable {
  const p = promotable(b);
  if (!p) throw new Error(b ? `${path} has no writer lease to take (only object backstores, once their volume is open, can be promoted)` : `${path} is not open`);
  return p;
}

/**
 * Promotes the reader `b` (path names it in messages and jobs). Without force the lease must be free (released
 * or expired); with force a live holder is fenced at its next renewal and the promotion waits for that.
 */
export async function promote(b: Backstore | undefined, o: { force?: boolean; path?: string } = {}): Promise<PromoteOutcome> {
  const path = o.path ?? 'object backstore';
  const p = need(b, path);
  const job = jobs.start('promote', path, { phase: o.force ? 'forced: taking the next epoch' : 'taking the writer lease' });
  try {
    const r = await p.promote({ force: o.force });
    job.finish();
    return r;
  } catch (e) {
    job.fail(e as Error);
    throw e;
  }
}

/** Resolves once the lease's holder releases it (clean close, migration hand-over). */
export function leaseReleased(b: Backstore | undefined, o: { path?: string; pollMs?: number; signal?: AbortSignal } = {}): Promise<unknown> {
  return need(b, o.path ?? 'object backstore').whenLeaseReleased(o);
}

/** The graceful hand-over: waits for the holder's release, then takes the lease at once (no fence wait). */
export async function promoteWhenReleased(b: Backstore | undefined, o: { path?: string; pollMs?: number; signal?: AbortSignal } = {}): Promise<PromoteOutcome> {
  await leaseReleased(b, o);
  return promote(b, { path: o.path });
}

/** The shell's `/backstores/object/NAME promote [force=true]`: its messages, or an error naming what is wrong. */
export async function promoteCommand(b: Backstore | undefined, path: string, force: boolean, openError?: string): Promise<string[]> {
  if (!b) throw new Error(`${path} is not open${openError ? ` (${openError})` : ''}; nothing to promote`);
  const r = await promote(b, { force, path });
  const from = r.previous ? ` from ${r.previous}` : '';
  const waited = r.fenceWaitMs ? ` after waiting ${r.fenceWaitMs} ms for it to be fenced` : '';
  return [`Promoted ${path} to writer (epoch ${r.epoch})${r.forced ? `: forced takeover${from}${waited}` : from ? `: took over the free lease of ${r.previous}` : ''}.`];
}
