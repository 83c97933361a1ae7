// The payload hash of a PUT (agent/backstores/object/bucket.ts): large bodies are hashed off the event loop and the
// hash travels as x-amz-content-sha256, which the SigV4 signature covers. s3rver does not check the hash against the
// body (real S3 does, and rejects a mismatch), so the requests are seen through a loopback tap in front of s3rver
// that forwards every byte unchanged and records what arrived.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Bucket } from '../../../agent/backstores/object/bucket.js';
import { startS3rver } from '../../helpers/s3rver.js';

interface Seen { method: string; url: string; sha: string | undefined; signed: string; bodySha: string }

test('a PUT carries the SHA-256 of its body in the signed x-amz-content-sha256 header, small or large', async () => {
  const s3 = await startS3rver('outpost-hash');
  const target = new URL(s3.endpoint);
  const seen: Seen[] = [];
  const tap = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      seen.push({
        method: req.method!, url: req.url!, sha: req.headers['x-amz-content-sha256'] as string | undefined,
        signed: /SignedHeaders=([^,]+)/.exec(String(req.headers.authorization))?.[1] ?? '', bodySha: createHash('sha256').update(body).digest('hex'),
      });
      const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      up.on('error', (e) => { res.statusCode = 502; res.end(e.message); });
      up.end(body);
    });
  });
  await new Promise<void>((r) => tap.listen(0, '127.0.0.1', r));
  try {
    const bucket = new Bucket({ bucket: s3.bucket, endpoint: `http://127.0.0.1:${(tap.address() as AddressInfo).port}`, forcePathStyle: true });
    const small = randomBytes(4096);
    const large = randomBytes(4 * 1024 * 1024 + 512);
    await bucket.put('t/small', small);
    await bucket.put('t/large', large);
    const puts = seen.filter((x) => x.method === 'PUT');
    assert.equal(puts.length, 2);
    for (const p of puts) {
      assert.equal(p.sha, p.bodySha, `${p.url}: x-amz-content-sha256 is the SHA-256 of the body that arrived`);
      assert.ok(p.signed.split(';').includes('x-amz-content-sha256'), `${p.url}: the header is signed (${p.signed})`);
    }
    assert.ok((await bucket.get('t/large'))!.equals(large));
    assert.ok((await bucket.get('t/small'))!.equals(small));
  } finally {
    await new Promise<void>((r) => tap.close(() => r()));
    await s3.dispose();
  }
});
