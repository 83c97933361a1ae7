// `outpost gateway --port N --data DIR`: admin token from the environment, secret key generated 0600.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { main } from '../../gateway/node/main.js';
import { freePort } from '../helpers/net.js';

test('main() serves with a generated secret key (mode 0600) and refuses without an admin token', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-gw-main-'));
  const saved = { a: process.env.OUTPOST_ADMIN_TOKEN, k: process.env.OUTPOST_SECRET_KEY, l: process.env.OUTPOST_LOG_LEVEL };
  try {
    delete process.env.OUTPOST_ADMIN_TOKEN;
    delete process.env.OUTPOST_SECRET_KEY;
    process.env.OUTPOST_LOG_LEVEL = 'silent';
    await assert.rejects(main(['gateway', '--port', '0', '--data', dir]), /OUTPOST_ADMIN_TOKEN/);
    process.env.OUTPOST_ADMIN_TOKEN = 'main-test-admin-token-123';
    const port = await freePort();
    const gw = await main(['gateway', '--port', String(port), '--data', dir]);
    try {
      assert.equal(gw.port, port);
      assert.equal((await stat(join(dir, 'secret.key'))).mode & 0o777, 0o600);
      assert.ok((await readFile(join(dir, 'secret.key'), 'utf8')).trim().length >= 32);
      const r = await fetch(`${gw.url}/v1/agents`, { headers: { authorization: 'Bearer main-test-admin-token-123' } });
      assert.equal(r.status, 200);
    } finally {
      await gw.close();
    }
    await assert.rejects(main(['gateway', '--port', '99999', '--data', dir]), /invalid --port/);
  } finally {
    for (const [k, v] of [['OUTPOST_ADMIN_TOKEN', saved.a], ['OUTPOST_SECRET_KEY', saved.k], ['OUTPOST_LOG_LEVEL', saved.l]] as const) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await rm(dir, { recursive: true, force: true });
  }
});
