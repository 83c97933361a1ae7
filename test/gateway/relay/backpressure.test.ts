// Backpressure end to end through a relay: an initiator that stops reading while 64 MiB of READ data is
// on its way makes the relay hold a small, bounded amount (it pauses the tunnel, and the agent's
// fabric waits), and every byte arrives intact once the initiator reads again.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { startAgentInProcess, type InProcessAgent } from '../../helpers/agent.js';
import { Opcode } from '../../../agent/iscsi/pdu/constants.js';
import type { DataIn, ScsiCommandHeader } from '../../../agent/iscsi/pdu/types.js';
import { multipathConfig, rawSession, scsiPastUa } from '../../agent/multipath/helpers.js';
import { spawnRelay, tempDir, until, writeToken, type SpawnedRelay } from './helpers.js';

const MiB = 1 << 20;
let tmp: Awaited<ReturnType<typeof tempDir>>;
let relay: SpawnedRelay;
let h: InProcessAgent;

before(async () => {
  tmp = await tempDir();
  const token = randomBytes(24).toString('hex');
  relay = await spawnRelay({ tokenFile: await writeToken(tmp.dir, 'relay-tokens', [token]) });
  const config = multipathConfig([{ tag: 1, portals: [] }], undefined, 128) as { targets: Array<{ tpgs: Array<Record<string, unknown>> }> };
  config.targets[0]!.tpgs[0]!.outpost_tunnels = [{ url: relay.url, advertise: `${relay.host}:${relay.portal}`, token_file: await writeToken(tmp.dir, 'agent-token', [token]) }];
  h = await startAgentInProcess({ config });
  assert.ok(await until(() => h.agent.tunnels.all()[0]?.state === 'connected', 10_000));
});

after(async () => {
  await h?.cleanup().catch(() => {}); // the relays below are stopped even so
  await relay?.stop();
  await tmp?.cleanup();
});

async function rssMiB(pid: number): Promise<number> {
  const m = /VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

test('a stalled initiator: the relay buffers a bounded amount, and all 64 MiB arrive once it reads again', async (t) => {
  const c = await rawSession(relay.host, relay.portal, 'iqn.2026-01.test:slow-reader');
  try {
    assert.equal((await scsiPastUa(c, [0, 0, 0, 0, 0, 0])).status, 0);
    const n = 64;
    const send = (i: number) => {
      const cdb = Buffer.alloc(16);
      Buffer.from([0x28, 0, 0, 0, (i * 2048) >> 8 & 0xff, (i * 2048) & 0xff, 0, 0x08, 0x00, 0]).copy(cdb); // READ(10), 2048 blocks
      const hd: ScsiCommandHeader = {
        opcode: Opcode.SCSI_COMMAND, immediate: false, itt: 0x1000 + i, final: true, read: true, write: false,
        attr: 1, lun: 0, expectedDataTransferLength: MiB, cmdSN: c.cmdSN, expStatSN: c.expStatSN, cdb,
      };
      c.cmdSN = (c.cmdSN + 1) >>> 0;
      c.send(hd);
    };
    const base = await rssMiB(relay.proc.pid!);
    c.socket.pause();
    for (let i = 0; i < n; i++) send(i);
    await new Promise((r) => setTimeout(r, 3000));
    const grown = (await rssMiB(relay.proc.pid!)) - base;
    t.diagnostic(`relay RSS grew by ${grown.toFixed(1)} MiB with ${n} MiB of reads held back by the initiator`);
    assert.ok(grown < 24, `relay RSS grew by ${grown.toFixed(1)} MiB`);
    c.socket.resume();
    const got = new Map<number, number>();
    let done = 0;
    while (done < n) {
      const p = await c.next(10_000);
      assert.ok(p, `stream stalled after ${done} commands`);
      if (p.header.opcode !== Opcode.DATA_IN) continue;
      const d = p.header as DataIn;
      got.set(d.itt, (got.get(d.itt) ?? 0) + p.data.length);
      if (d.hasStatus) {
        assert.equal(d.status, 0);
        done++;
      }
    }
    for (let i = 0; i < n; i++) assert.equal(got.get(0x1000 + i), MiB, `command ${i}`);
  } finally {
    c.close();
  }
});
