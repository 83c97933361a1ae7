// Clones and read-only exports of snapshots from the shell: `source=OTHER@SNAP` resolved against the model (OTHER
// is an object backstore of this agent, or a bucket prefix ending in '/'), and `delete NAME destroy=true`, which
// removes a volume's objects from the bucket and then its dependent record at the origin (docs/bucket-format.md).
import { Bucket } from '../backstores/object/bucket.js';
import { dependentKey } from '../backstores/object/clone.js';
import { SNAPSHOT_NAME_RE, decodeDescriptor, keys, normalizePrefix, parseJson } from '../backstores/object/format.js';
import { leaseKeys } from '../backstores/object/lease.js';
import type { RootConfig, StorageObjectConfig } from '../config/schema.js';
import { jobs } from '../jobs.js';

/** `OTHER@SNAP` → `<prefix>@<SNAP>` as stored in saveconfig.json; throws a message naming what is wrong. */
export function resolveSource(root: RootConfig, so: StorageObjectConfig, source: string): string {
  const at = source.lastIndexOf('@');
  if (at <= 0) throw new Error(`source '${source}' must be VOLUME@SNAPSHOT (an object backstore of this agent, or a bucket prefix ending in '/').`);
  const other = source.slice(0, at);
  const snap = source.slice(at + 1);
  if (!SNAPSHOT_NAME_RE.test(snap)) throw new Error(`Invalid snapshot name '${snap}' in source.`);
  const bs = root.storage_objects.find((x) => x.plugin === 'object' && x.name === other);
  if (bs) {
    if (bs.bucket !== so.bucket || (bs.endpoint ?? '') !== (so.endpoint ?? '')) {
      throw new Error(`source ${other} is in s3://${bs.bucket}/ at ${bs.endpoint ?? 'AWS'}: a clone shares its objects, so it must be in the same bucket and endpoint.`);
    }
    return `${normalizePrefix(bs.prefix ?? `${bs.name}/`)}@${snap}`;
  }
  if (other.endsWith('/')) return `${other}@${snap}`;
  throw new Error(`No object backstore named ${other} (give a backstore name, or a bucket prefix ending in '/').`);
}

function bucketOf(so: StorageObjectConfig): Bucket {
  return new Bucket({ bucket: so.bucket!, endpoint: so.endpoint, region: so.region, forcePathStyle: so.force_path_style, connectTimeoutMs: 3000 });
}

const TIMEOUT_MS = 30_000;

/** Refuses to destroy a volume whose snapshots other volumes still read. */
export async function checkDestroy(so: StorageObjectConfig): Promise<void> {
  const prefix = normalizePrefix(so.prefix ?? `${so.name}/`);
  if (!prefix) throw new Error('destroy=true needs a volume with its own prefix (this one is at the bucket root).');
  const bucket = bucketOf(so);
  try {
    const deps = (await bucket.list(keys.snapshots(prefix), Infinity, TIMEOUT_MS)).filter((k) => k.includes('.clones/'));
    if (deps.length) {
      const names = [...new Set(deps.map((k) => k.slice(keys.snapshots(prefix).length).split('.clones/')[0]))];
      throw new Error(`s3://${so.bucket}/${prefix} has snapshots with dependent clones (${names.join(', ')}); delete the clones first.`);
    }
  } finally {
    bucket.destroy();
  }
}

/**
 * Deletes the volume's objects (descriptor first, so nothing opens a half-deleted volume; its data, pages,
 * roots, snapshots and lease), then its record at the origin it was cloned from. Returns objects deleted.
 */
export async function destroyVolume(so: StorageObjectConfig, path: string): Promise<number> {
  const prefix = normalizePrefix(so.prefix ?? `${so.name}/`);
  const bucket = bucketOf(so);
  const job = jobs.start('gc', path, { unit: 'objects', phase: `destroying s3://${so.bucket}/${prefix}` });
  try {
    const body = await bucket.get(keys.descriptor(prefix), TIMEOUT_MS);
    const origin = body ? decodeDescriptor(parseJson(body, keys.descriptor(prefix))).origin ?? null : null;
    let n = 0;
    if (body) { await bucket.delete([keys.descriptor(prefix)], TIMEOUT_MS); n++; }
    for (const sub of ['chunks/', 'segments/', 'pages/', 'roots/', 'manifests/', 'snapshots/', 'heat/', 'lease-probe/', 'epochs/']) {
      const list = await bucket.list(prefix + sub, Infinity, TIMEOUT_MS);
      job.set(n);
      if (list.length) await bucket.delete(list, TIMEOUT_MS);
      n += list.length;
    }
    if (await bucket.get(leaseKeys.lease(prefix), TIMEOUT_MS)) { await bucket.delete([leaseKeys.lease(prefix)], TIMEOUT_MS); n++; }
    if (origin) await bucket.delete([dependentKey(origin, bucket.name, prefix)], TIMEOUT_MS);
    job.set(n);
    job.finish();
    return n;
  } catch (e) {
    job.fail(e);
    throw e;
  } finally {
    bucket.destroy();
  }
}
