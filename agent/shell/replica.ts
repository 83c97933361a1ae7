// docs/replication.md: `/backstores/object/NAME replica create|delete`, and the recovery point lines of `info`.
import { resolve as resolvePath } from 'node:path';
import { findSo } from './tree.js';
import { ShellError } from './host.js';
import { parseBool } from './values.js';
import type { CommandSpec } from './commands.js';

const err = (msg: string): never => {
  throw new ShellError(msg);
};

export const replicaCommand: CommandSpec = {
  params: [{ name: 'action', required: true, values: () => ['create', 'delete'] }, { name: 'bucket' }, { name: 'prefix' }, { name: 'endpoint' },
    { name: 'region' }, { name: 'force_path_style', values: () => ['true', 'false'] }, { name: 'credentials_file' }, { name: 'credentials_env' }],
  help: 'replica create bucket=B prefix=P [endpoint=URL] [region=R] [force_path_style=true] [credentials_file=FILE | credentials_env=NAME]: '
    + 'replicates this object LUN continuously to a second bucket (its newest complete generation is always there). replica delete stops it '
    + '(the replica keeps what it holds).',
  run(ctx, a) {
    const so = findSo(ctx.draft, 'object', ctx.node.ids.so!) ?? err('Storage object no longer exists.');
    const path = ctx.node.path;
    if (a.action === 'delete') {
      const extra = Object.entries(a).filter(([k, v]) => k !== 'action' && v !== undefined).map(([k]) => k);
      if (extra.length) err(`replica delete takes no parameters (got ${extra.join(', ')}).`);
      const r = so.replica as { bucket?: string; prefix?: string } | undefined;
      if (!r) err(`${path} has no replica.`);
      delete so.replica;
      ctx.out.push(`Deleted replica s3://${r!.bucket}/${r!.prefix} of ${path} (the replica bucket keeps what it holds).`);
      return;
    }
    if (a.action !== 'create') err(`Unknown replica action '${a.action}': use replica create or replica delete.`);
    if (so.replica) err(`${path} already has a replica; replica delete first.`);
    if (!a.bucket) err('Missing required parameter bucket: replica create bucket=B prefix=P [endpoint=URL]');
    if (!a.prefix) err('Missing required parameter prefix: replica create bucket=B prefix=P [endpoint=URL]');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(a.bucket!)) err(`'${a.bucket}' is not a valid bucket name.`);
    if (a.endpoint !== undefined && !/^https?:\/\/\S+$/.test(a.endpoint)) err(`endpoint '${a.endpoint}' must be an http(s) URL.`);
    if (a.credentials_file !== undefined && a.credentials_env !== undefined) err('Give credentials_file or credentials_env, not both.');
    if (a.credentials_env !== undefined && !/^[A-Z_][A-Z0-9_]*$/.test(a.credentials_env)) err(`credentials_env '${a.credentials_env}' must be an environment variable prefix (A-Z, 0-9, _).`);
    const replica: Record<string, string | boolean> = { bucket: a.bucket!, prefix: a.prefix!.endsWith('/') ? a.prefix! : `${a.prefix}/` };
    if (a.endpoint !== undefined) replica.endpoint = a.endpoint;
    if (a.region !== undefined) replica.region = a.region;
    if (a.force_path_style !== undefined) replica.force_path_style = parseBool(a.force_path_style, false, 'force_path_style');
    // Only where the secret is, never the secret: saveconfig.json is world-readable on many systems.
    if (a.credentials_file !== undefined) replica.credentials_file = resolvePath(a.credentials_file);
    if (a.credentials_env !== undefined) replica.credentials_env = a.credentials_env;
    so.replica = replica;
    ctx.out.push(`Created replica s3://${replica.bucket}/${replica.prefix}${a.endpoint ? ` at ${a.endpoint}` : ''} of ${path}.`);
  },
};

/** The two contract lines of `info` (docs: DESIGN.md "Contracts"): seconds, a number. */
export function recoveryLines(stats: Record<string, number | string | null> | undefined): string[] {
  if (!stats || typeof stats.recovery_point_s !== 'number') return [];
  const out = [`recovery point: ${stats.recovery_point_s} s`];
  if (typeof stats.replica_recovery_point_s === 'number') out.push(`replica recovery point: ${stats.replica_recovery_point_s} s`);
  return out;
}
