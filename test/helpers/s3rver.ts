// Test helper: a real S3 endpoint (s3rver) as a child process on 127.0.0.1, with one bucket.
// A child (not in-process) so that stop() really severs the endpoint and start() brings the same data back.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { freePort } from './net.js';

const require = createRequire(import.meta.url);

export interface S3rverHandle {
  readonly endpoint: string;
  readonly bucket: string;
  readonly port: number;
  readonly directory: string;
  /** Environment for a child process that should reach this endpoint (AWS chain credentials). */
  readonly env: Record<string, string>;
  /** Stops the endpoint (SIGKILL: as abrupt as a network outage); data stays in `directory`. */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same data. */
  start(): Promise<void>;
  /** Lists every key under `prefix` (paginated). */
  listKeys(prefix?: string): Promise<string[]>;
  /** Stops the endpoint and removes its directory. */
  dispose(): Promise<void>;
}

/** Sets the AWS chain variables for this process (s3rver accepts S3RVER/S3RVER). */
export function useS3rverCredentials(): void {
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  process.env.AWS_REGION = 'us-east-1';
}

export async function startS3rver(bucket = 'outpost-test'): Promise<S3rverHandle> {
  useS3rverCredentials();
  const directory = await mkdtemp(join(tmpdir(), 'outpost-s3rver-'));
  const port = await freePort();
  const modulePath = require.resolve('s3rver');
  const script = `
    const S3rver = require(${JSON.stringify(modulePath)});
    new S3rver({ address: '127.0.0.1', port: ${port}, silent: true, directory: ${JSON.stringify(directory)},
      configureBuckets: [{ name: ${JSON.stringify(bucket)}, configs: [] }] })
      .run().then(() => process.stdout.write('ready\\n'), (e) => { console.error(e); process.exit(1); });`;
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    // s3rver encrypts ListObjectsV2 continuation tokens with DES, which OpenSSL 3 keeps in its legacy provider.
    const c = spawn(process.execPath, ['--openssl-legacy-provider', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let stderr = '';
    c.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`s3rver did not start: ${stderr}`)), 15_000);
      c.stdout!.on('data', (d: Buffer) => { if (d.toString().includes('ready')) { clearTimeout(timer); resolve(); } });
      c.once('exit', (code) => { clearTimeout(timer); reject(new Error(`s3rver exited ${code}: ${stderr}`)); });
    });
  };
  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => { c.once('exit', () => resolve()); c.kill('SIGKILL'); });
  };

  await start();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  return {
    endpoint, bucket, port, directory,
    env: { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', AWS_REGION: 'us-east-1' },
    stop, start,
    async listKeys(prefix = '') {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
        for (const o of r.Contents ?? []) if (o.Key) keys.push(o.Key);
        token = r.IsTruncated ? r.NextContinuationToken : undefined;
      } while (token);
      return keys;
    },
    async dispose() {
      await stop();
      client.destroy();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
