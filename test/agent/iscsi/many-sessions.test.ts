// RFC 7143 §4.2.2 under load: 64 concurrent sessions at QD32 (iscsi-perf, distinct initiator names,
// generate_node_acls=1) against one agent must all run to completion. iscsi-perf only ends its run
// if some completion lands in its last second, so any session stalled for ~1 s fails this test.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startAgentInProcess, type InProcessAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';
import { run } from '../../helpers/iscsi-fixture.js';

const T = 'iqn.2026-01.dev.outpost.test:many';
let h: InProcessAgent | undefined;
after(async () => h?.cleanup());

test('64 concurrent iscsi-perf sessions at QD32 all finish', async () => {
  const port = await freePort();
  h = await startAgentInProcess({
    config: {
      fabric_modules: [],
      storage_objects: [{ plugin: 'rd_mcp', name: 'many', size: 64 << 20, wwn: '0c0ffee0-1111-4222-8333-444455556666', attributes: { block_size: 512 } }],
      targets: [{
        fabric: 'iscsi', wwn: T,
        tpgs: [{
          tag: 1, enable: true, parameters: { AuthMethod: 'None' }, node_acls: [],
          attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 },
          luns: [{ index: 0, storage_object: '/backstores/ramdisk/many' }],
          portals: [{ ip_address: '127.0.0.1', port }],
        }],
      }],
    },
  });
  const seconds = 3;
  const runs = await Promise.all(Array.from({ length: 64 }, (_, i) =>
    run('iscsi-perf', ['-i', `iqn.2026-01.dev.outpost.test:perf-${i}`, '-r', '-m', '32', '-b', '8', '-t', String(seconds), `iscsi://127.0.0.1:${port}/${T}/0`], {}, (seconds + 25) * 1000)));
  const bad = runs.map((r, i) => ({ i, r })).filter(({ r }) => r.code !== 0 || !/finished\./.test(r.stdout));
  assert.deepEqual(bad.map(({ i, r }) => `#${i} exit ${r.code}: ${r.stdout.split('\r').slice(-1)[0]!.trim()} ${r.stderr.trim()}`), []);
  for (let t = 0; t < 40 && h.agent.server.sessions().some((s) => s.type === 'Normal'); t++) await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.agent.server.sessions().filter((s) => s.type === 'Normal').length, 0, 'every session logged out');
});
