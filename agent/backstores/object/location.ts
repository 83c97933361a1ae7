// docs/writer-lease.md §One volume, one backstore: the identity of a volume in a bucket (endpoint, bucket,
// prefix), so that two backstores of one agent never open the same prefix.
export interface VolumeLocationSpec {
  bucket?: string;
  prefix?: string;
  endpoint?: string;
}

/** A comparable key: endpoint without scheme case or trailing slashes, and the prefix with its trailing '/'. */
export function volumeLocation(s: VolumeLocationSpec): string {
  const endpoint = (s.endpoint ?? 'aws').trim().replace(/\/+$/, '').toLowerCase();
  const prefix = s.prefix ? (s.prefix.endsWith('/') ? s.prefix : `${s.prefix}/`) : '';
  return `${endpoint}\n${s.bucket ?? ''}\n${prefix}`;
}

export function describeLocation(s: VolumeLocationSpec): string {
  return `s3://${s.bucket ?? ''}/${s.prefix ?? ''}${s.endpoint ? ` at ${s.endpoint}` : ''}`;
}
