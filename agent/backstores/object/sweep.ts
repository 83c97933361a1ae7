// docs/bucket-format.md §Garbage collection: the full sweep — every data object and page under the prefix
// that no retained root, snapshot or in-memory state names (leftovers of a crash between upload and root).
import type { ManifestOptions } from './manifest.js';
import { keys } from './format.js';
import type { referencedKeys } from './roots.js';

/**
 * Keys to delete: listed objects named by neither `ref` nor the in-memory state before or after the listing
 * (uploads may land while it runs), plus roots older than the retained window.
 */
export async function sweepGarbage(o: ManifestOptions, ref: Awaited<ReturnType<typeof referencedKeys>>, before: Set<string>,
  inMemory: () => Set<string>, learnSize: (segmentId: string, bytes: number) => void): Promise<string[]> {
  const { bucket, prefix, timeoutMs } = o;
  const listed = await bucket.listSized(`${prefix}segments/`, timeoutMs);
  for (const [k, size] of listed) learnSize(k.slice(`${prefix}segments/`.length), size);
  const objects = [
    ...listed.keys(),
    ...await bucket.list(`${prefix}chunks/`, Infinity, timeoutMs),
    ...await bucket.list(`${prefix}pages/`, Infinity, timeoutMs),
  ];
  const after = inMemory();
  const garbage = objects.filter((k) => !ref.live.has(k) && !before.has(k) && !after.has(k));
  return [...garbage, ...ref.oldRoots.filter((k) => !after.has(k))];
}

/**
 * Deletes garbage so that no root is ever seen naming a missing object, even across a crash between the
 * requests (a multi-object delete is not atomic, nor ordered): the roots first, then what they named.
 */
export async function deleteGarbage(o: Pick<ManifestOptions, 'bucket' | 'prefix' | 'timeoutMs'>, garbage: readonly string[]): Promise<void> {
  const roots = keys.roots(o.prefix);
  const first = garbage.filter((k) => k.startsWith(roots));
  if (first.length) await o.bucket.delete(first, o.timeoutMs);
  const rest = garbage.filter((k) => !k.startsWith(roots));
  if (rest.length) await o.bucket.delete(rest, o.timeoutMs);
}
