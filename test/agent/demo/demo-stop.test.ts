// `npm start` stopped with Ctrl-C at a terminal: the terminal signals the whole foreground process
// group, so the embedded bucket must not die with it before the agent's final flush and lease release.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../helpers/net.js';

const demo = resolve('dist/agent/demo.js');

function listening(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); ok(true); });
    s.once('error', () => ok(false));
  });
}

test('Ctrl-C to the demo\'s process group releases the writer lease before the bucket stops', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-demo-'));
  const ports = { OUTPOST_DEMO_ISCSI_PORT: await freePort(), OUTPOST_DEMO_GATEWAY_PORT: await freePort(), OUTPOST_DEMO_S3_PORT: await freePort(),
    OUTPOST_DEMO_RELAY_PORT: await freePort(), OUTPOST_DEMO_RELAY_LISTEN: await freePort() };
  const env = { ...process.env, OUTPOST_DEMO_DIR: dir, OUTPOST_LOG_LEVEL: 'warn', ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) };
  // A process group of its own, as a shell gives a foreground job.
  const child = spawn(process.execPath, [demo], { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { out += d.toString(); });
  const exited = new Promise<number | null>((ok) => child.once('exit', (code) => ok(code)));
  try {
    const deadline = Date.now() + 90_000;
    while (!out.includes('Stop with Ctrl-C')) {
      assert.ok(Date.now() < deadline, `the demo did not come up:\n${out}`);
      assert.equal(child.exitCode, null, `the demo exited:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.ok(await listening(ports.OUTPOST_DEMO_S3_PORT), 'the embedded bucket is up');
    process.kill(-child.pid!, 'SIGINT');
    assert.equal(await exited, 0, out);
    assert.doesNotMatch(out, /not released|ECONNREFUSED/, 'the lease was released while the bucket was still up');
    assert.match(out, /Stopping: flushing LUNs/);
    // The bucket went down after the agent: nothing of the demo is left listening.
    for (let i = 0; i < 50 && await listening(ports.OUTPOST_DEMO_S3_PORT); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await listening(ports.OUTPOST_DEMO_S3_PORT), false, 'the embedded bucket stopped with the demo');
  } finally {
    if (child.exitCode === null) process.kill(-child.pid!, 'SIGKILL');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
});
