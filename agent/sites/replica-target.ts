// docs/replication.md §Setting up: a replica's location and credentials, and the checks made before anything
// is written to it — reachable, credentials accepted, not the primary's own prefix, no other volume there,
// no writer holding it.
import { readFile } from 'node:fs/promises';
import { Bucket } from '../backstores/object/bucket.js';
import { decodeDescriptor, keys, normalizePrefix, parseJson, type VolumeDescriptor } from '../backstores/object/format.js';
import { decodeLease, leaseFree, leaseKeys } from '../backstores/object/lease.js';
import { describeLocation, volumeLocation } from '../backstores/object/location.js';

/** As kept in saveconfig.json under the object storage object's `replica` key (paths and names, never secrets). */
export interface ReplicaSpec {
  bucket: string;
  prefix: string;
  endpoint?: string;
  region?: string;
  force_path_style?: boolean;
  /** A file with aws_access_key_id / aws_secret_access_key (AWS credentials-file lines, or JSON). */
  credentials_file?: string;
  /** Names environment variables NAME_ACCESS_KEY_ID and NAME_SECRET_ACCESS_KEY (and NAME_SESSION_TOKEN). */
  credentials_env?: string;
  /** Bandwidth schedule for replication PUTs (agent/sites/bandwidth.ts syntax). */
  bandwidth?: string;
}

export interface PrimaryLocation { bucket: string; prefix?: string; endpoint?: string }

type Creds = { accessKeyId: string; secretAccessKey: string; sessionToken?: string };

/** Static credentials for the replica, or undefined for the standard AWS chain. */
export async function replicaCredentials(spec: ReplicaSpec): Promise<Creds | undefined> {
  if (spec.credentials_file) {
    let text: string;
    try {
      text = await readFile(spec.credentials_file, 'utf8');
    } catch (e) {
      throw new Error(`replica credentials_file ${spec.credentials_file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const t = text.trim();
    let id: string | undefined;
    let secret: string | undefined;
    let token: string | undefined;
    if (t.startsWith('{')) {
      let j: Record<string, string>;
      try {
        j = JSON.parse(t) as Record<string, string>;
      } catch {
        // The parser's message quotes the file; say only that it is not JSON.
        throw new Error(`replica credentials_file ${spec.credentials_file} is not valid JSON`);
      }
      id = j.accessKeyId ?? j.aws_access_key_id;
      secret = j.secretAccessKey ?? j.aws_secret_access_key;
      token = j.sessionToken ?? j.aws_session_token;
    } else {
      for (const line of t.split('\n')) {
        const m = /^\s*([a-z_]+)\s*=\s*(\S+)\s*$/i.exec(line);
        if (!m) continue;
        const k = m[1]!.toLowerCase();
        if (k === 'aws_access_key_id') id = m[2];
        else if (k === 'aws_secret_access_key') secret = m[2];
        else if (k === 'aws_session_token') token = m[2];
      }
    }
    if (!id || !secret) throw new Error(`replica credentials_file ${spec.credentials_file} has no aws_access_key_id and aws_secret_access_key`);
    return { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) };
  }
  if (spec.credentials_env) {
    const n = spec.credentials_env;
    const id = process.env[`${n}_ACCESS_KEY_ID`];
    const secret = process.env[`${n}_SECRET_ACCESS_KEY`];
    if (!id || !secret) throw new Error(`replica credentials_env ${n}: ${n}_ACCESS_KEY_ID and ${n}_SECRET_ACCESS_KEY must both be set in the agent's environment`);
    const token = process.env[`${n}_SESSION_TOKEN`];
    return { accessKeyId: id, secretAccessKey: secret, ...(token ? { sessionToken: token } : {}) };
  }
  return undefined;
}

export async function openReplicaBucket(spec: ReplicaSpec): Promise<Bucket> {
  return new Bucket({
    bucket: spec.bucket, endpoint: spec.endpoint, region: spec.region, forcePathStyle: spec.force_path_style,
    credentials: await replicaCredentials(spec), connectTimeoutMs: 3000,
  });
}

/** A message for people from an S3 error (wrong key, unreachable endpoint, missing bucket). */
export function s3Problem(e: unknown): string {
  const err = e as Error & { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const name = err.name ?? '';
  if (/InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Forbidden|InvalidToken|ExpiredToken/.test(name) || err.$metadata?.httpStatusCode === 403) {
    return `credentials refused (${name || 'HTTP 403'})`;
  }
  if (name === 'NoSuchBucket') return 'no such bucket';
  if (/ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|ECONNRESET|EAI_AGAIN/.test(String(err.code ?? err.message)) || name === 'TimeoutError' || name === 'AbortError') {
    return `endpoint unreachable (${err.code ?? name ?? err.message})`;
  }
  return err.message || name || String(e);
}

/**
 * Checks that `spec` may receive `primary`'s volume, changing nothing anywhere. Returns the replica's
 * descriptor when it already holds this volume (a resumed or failback replica), or null when it is empty.
 */
export async function checkReplicaTarget(spec: ReplicaSpec, primary: PrimaryLocation, d: VolumeDescriptor, bucket: Bucket, timeoutMs: number):
  Promise<VolumeDescriptor | null> {
  const where = describeLocation(spec);
  const [mine, theirs] = [volumeLocation(primary), volumeLocation(spec)];
  if (mine === theirs) {
    throw new Error(`replica ${where} is the primary volume's own prefix; give another bucket or prefix`);
  }
  // Nested prefixes in one bucket: one volume's sweep would take the other's objects for its own garbage.
  if (mine.startsWith(theirs) || theirs.startsWith(mine)) {
    throw new Error(`replica ${where} and the primary volume's prefix ${describeLocation(primary)} contain one another; give prefixes that do not nest`);
  }
  const prefix = normalizePrefix(spec.prefix);
  let existing: Buffer | null;
  let lease: Buffer | null;
  try {
    // A listing proves the credentials and the bucket; the descriptor tells whose volume is there.
    await bucket.list(prefix, 1, timeoutMs);
    existing = await bucket.get(keys.descriptor(prefix), timeoutMs);
    lease = await bucket.get(leaseKeys.lease(prefix), timeoutMs);
  } catch (e) {
    throw new Error(`replica ${where}: ${s3Problem(e)}`, { cause: e });
  }
  if (existing) {
    let r: VolumeDescriptor;
    try {
      r = decodeDescriptor(parseJson(existing, `replica ${where}volume.json`));
    } catch (e) {
      throw new Error(`replica ${where} holds something that is not an Outpost volume (${(e as Error).message}); use an empty prefix`);
    }
    const diff: string[] = [];
    if (r.size !== d.size) diff.push(`size ${r.size} bytes, not ${d.size}`);
    if ((r.wwn ?? null) !== (d.wwn ?? null)) diff.push(`wwn ${r.wwn ?? 'none'}, not ${d.wwn ?? 'none'}`);
    if (r.chunk_size !== d.chunk_size) diff.push(`chunk size ${r.chunk_size}, not ${d.chunk_size}`);
    if ((r.encryption?.key_check ?? null) !== (d.encryption?.key_check ?? null)) diff.push('another volume key');
    if (diff.length) throw new Error(`replica ${where} holds a different volume (${diff.join(', ')}); use an empty prefix`);
  }
  if (lease) {
    try {
      const rec = decodeLease(lease);
      if (!leaseFree(rec, Date.now(), 0)) {
        throw new Error(`replica ${where} is in use: ${rec.holder} holds its writer lease (epoch ${rec.epoch}) until ${rec.expires}; stop that LUN first`);
      }
    } catch (e) {
      if ((e as Error).message.startsWith('replica ')) throw e;
    }
  }
  return existing ? decodeDescriptor(parseJson(existing, 'volume.json')) : null;
}
