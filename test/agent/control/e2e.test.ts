// End to end: gateway (Node) → control link → real agent → libiscsi login with the pushed CHAP secret.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startControlLink } from '../../../agent/control/link.js';
import { silentLogger } from '../../../agent/lib/log.js';
import { startAgent } from '../../../agent/main.js';
import { api, startNodeTestGateway, waitFor } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';

const run = promisify(execFile);
const TARGET = 'iqn.2024-01.com.example.outpost:e2e';
const INITIATOR = 'iqn.1994-05.com.redhat:e2e-host';
const SECRET = 'E2e-Chap-Secret1'; // 16 chars: acceptable to Windows too

async function inq(port: number, user: string, secret: string, initiator = INITIATOR): Promise<boolean> {
  const url = `iscsi://${user}%${encodeURIComponent(secret)}@127.0.0.1:${port}/${TARGET}/0`;
  try {
    await run('iscsi-inq', ['-i', initiator, url], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

test('ACL with CHAP pushed from the gateway admits a libiscsi login; DELETE refuses it and drops the session', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'outpost-e2e-'));
  const gw = await startNodeTestGateway();
  const port = await freePort();
  const config = join(dir, 'saveconfig.json');
  await writeFile(config, JSON.stringify({
    storage_objects: [{ plugin: 'rd_mcp', name: 'r0', size: 16 * 1024 * 1024 }],
    targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true, attributes: { authentication: 1, generate_node_acls: 0 }, luns: [{ index: 0, storage_object: '/backstores/ramdisk/r0' }], portals: [{ ip_address: '127.0.0.1', port }], node_acls: [] }] }],
  }));
  const agent = await startAgent({ configPath: config, stateDir: join(dir, 'state'), log: silentLogger, admin: false });
  const enrolled = await api(gw, 'POST', '/v1/agents', { name: 'e2e' });
  const link = await startControlLink({ url: gw.url, token: enrolled.body.token, stateDir: join(dir, 'state'), agent, log: silentLogger, statusIntervalMs: 500 });
  const perf = { child: undefined as ReturnType<typeof spawn> | undefined };
  try {
    await waitFor('agent connected', async () => (await api(gw, 'GET', '/v1/agents')).body.agents[0].connected, 10_000);
    assert.equal(await inq(port, 'e2e-user', SECRET), false, 'no ACL yet: refused');

    const t0 = Date.now();
    const put = await api(gw, 'PUT', `/v1/acls/${TARGET}/${INITIATOR}`, { chap: { userid: 'e2e-user', password: SECRET }, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] });
    assert.equal(put.status, 200, put.text);
    await waitFor('login with the pushed secret', () => inq(port, 'e2e-user', SECRET), 5000, 100);
    console.log(`# PUT ACL → libiscsi login succeeded after ${Date.now() - t0} ms`);
    assert.equal(await inq(port, 'e2e-user', 'Wrong-Secret-123'), false, 'wrong secret refused');
    assert.equal(await inq(port, 'e2e-user', SECRET, 'iqn.1994-05.com.redhat:stranger'), false, 'unknown initiator refused');

    // a live session: iscsi-perf keeps reading until its connection is dropped
    perf.child = spawn('iscsi-perf', ['-i', INITIATOR, '-x', '0', `iscsi://e2e-user%${SECRET}@127.0.0.1:${port}/${TARGET}/0`], { stdio: 'ignore' });
    await waitFor('live session', () => agent.status().sessions.length > 0, 5000);
    const t1 = Date.now();
    assert.equal((await api(gw, 'DELETE', `/v1/acls/${TARGET}/${INITIATOR}`)).status, 200);
    await waitFor('session dropped', () => agent.status().sessions.length === 0, 5000, 20);
    console.log(`# DELETE ACL → live session dropped after ${Date.now() - t1} ms`);
    assert.equal(await inq(port, 'e2e-user', SECRET), false, 'login refused after DELETE');
    console.log(`# DELETE ACL → next login refused within ${Date.now() - t1} ms`);
    assert.ok(Date.now() - t1 < 5000, "refused within 5 s");
  } finally {
    perf.child?.kill('SIGKILL');
    await link.close();
    await agent.stop();
    await gw.dispose();
    await rm(dir, { recursive: true, force: true });
  }
});
