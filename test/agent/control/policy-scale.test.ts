// A hostile or huge gateway snapshot (issue 18 item 4): the real agent validates 8,001 ACLs in linear
// time without stalling its event loop (iSCSI I/O runs on it), and refuses counts over POLICY_LIMITS.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { startControlLink } from '../../../agent/control/link.js';
import { silentLogger } from '../../../agent/lib/log.js';
import { decodeAgentMessage, encodeMessage, type AgentMessage } from '../../../shared/control-protocol.js';
import { POLICY_LIMITS, type AclPolicy, type PolicySnapshot } from '../../../shared/policy.js';
import { startAgentInProcess } from '../../helpers/agent.js';
import { waitFor } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';
import { run } from '../../helpers/iscsi-fixture.js';

const TARGET = 'iqn.2024-01.com.example:scale';

function acls(n: number): AclPolicy[] {
  return Array.from({ length: n }, (_, i) => ({ initiator: `iqn.1994-05.com.redhat:host-${String(i).padStart(5, '0')}`, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }] }));
}

test('8,001 ACLs: applied in well under a second, validation yielding to the event loop (no 9 s stall); over the cap: nacked at once', { timeout: 120_000 }, async () => {
  const iscsiPort = await freePort();
  const a = await startAgentInProcess({
    admin: false,
    config: {
      storage_objects: [{ plugin: 'rd_mcp', name: 'r0', size: 4 * 1024 * 1024 }],
      targets: [{ wwn: TARGET, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true, attributes: { authentication: 0, generate_node_acls: 0 }, luns: [{ index: 0, storage_object: '/backstores/ramdisk/r0' }], portals: [{ ip_address: '127.0.0.1', port: iscsiPort }], node_acls: [] }] }],
    },
  });
  const port = await freePort();
  const wss = new WebSocketServer({ host: '127.0.0.1', port });
  await new Promise((r) => wss.once('listening', r));
  const received: AgentMessage[] = [];
  let sock: WebSocket | undefined;
  wss.on('connection', (ws) => {
    sock = ws;
    ws.on('message', (d, bin) => bin && received.push(decodeAgentMessage(d as Buffer)));
  });
  const link = await startControlLink({ url: `http://127.0.0.1:${port}`, token: 't', stateDir: a.stateDir, agent: a.agent, log: silentLogger });
  let worst = 0;
  let last = performance.now();
  const ticker = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last - 10);
    last = now;
  }, 10);
  try {
    await waitFor('hello', () => received.some((m) => m.type === 'hello'), 5000);
    // what this machine's scheduling alone costs (CI boxes are shared): the timer's worst lateness idle
    worst = 0;
    last = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const baseline = worst;
    const big: PolicySnapshot = { version: 7, targets: { [TARGET]: acls(8001) } };
    const frame = encodeMessage({ type: 'snapshot', policy: big });
    worst = 0;
    last = performance.now();
    const t0 = performance.now();
    sock!.send(frame);
    const ack = await waitFor('ack of the 8,001-ACL snapshot', () => received.find((m) => m.type === 'ack' || m.type === 'nack'), 30_000, 2);
    const ms = performance.now() - t0;
    console.log(`# 8,001 ACLs (${frame.byteLength} bytes): acked after ${ms.toFixed(0)} ms, worst event-loop stall ${worst.toFixed(0)} ms (idle baseline ${baseline.toFixed(0)} ms)`);
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    // The quadratic validator took 9.8 s and stalled I/O 9.5 s. On a quiet box this takes ~0.2-0.4 s,
    // the longest stall (the one-step msgpack decode of the 760 KB frame, then the swap) 70-160 ms;
    // the margins absorb a 2-core box shared with other jobs without letting that regression by.
    assert.ok(ms < 3000 + 4 * baseline, `applied in ${ms} ms`);
    assert.ok(worst < 500 + 2 * baseline, `event loop stalled ${worst} ms (baseline ${baseline} ms)`);
    // the policy is in force: the last of the 8,001 initiators logs in and reads; a stranger does not
    const inq = await run('iscsi-inq', ['-i', 'iqn.1994-05.com.redhat:host-08000', `iscsi://127.0.0.1:${iscsiPort}/${TARGET}/0`]);
    assert.equal(inq.code, 0, inq.stderr);
    assert.notEqual((await run('iscsi-inq', ['-i', 'iqn.1994-05.com.redhat:stranger', `iscsi://127.0.0.1:${iscsiPort}/${TARGET}/0`])).code, 0);

    // over the per-target cap: refused before any per-ACL work, policy kept
    received.length = 0;
    const t1 = performance.now();
    sock!.send(encodeMessage({ type: 'snapshot', policy: { version: 8, targets: { [TARGET]: acls(POLICY_LIMITS.aclsPerTarget + 1) } } }));
    const nack = await waitFor('nack of the oversized snapshot', () => received.find((m) => m.type === 'nack' || m.type === 'ack'), 30_000, 2);
    assert.equal(nack.type, 'nack');
    assert.match(nack.type === 'nack' ? nack.error : '', /8193 ACLs, more than the 8192 allowed per target/);
    // the frame is decoded, then refused by count before any per-ACL work (same margins as above)
    assert.ok(performance.now() - t1 < 2000 + 4 * baseline, `nacked after ${performance.now() - t1} ms`);
    assert.equal(link.appliedVersion, 7);
    assert.equal((await run('iscsi-inq', ['-i', 'iqn.1994-05.com.redhat:host-08000', `iscsi://127.0.0.1:${iscsiPort}/${TARGET}/0`])).code, 0, 'old policy kept');
  } finally {
    clearInterval(ticker);
    await link.close();
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
    await a.cleanup();
  }
});
