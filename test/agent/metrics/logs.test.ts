// Issue 14 logs: --log-level / OUTPOST_LOG_LEVEL, logins, logouts and CHAP failures at info as JSON lines,
// readable text with OUTPOST_LOG_FORMAT=text (the default on a terminal).
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { formatLogLine } from '../../../agent/lib/log.js';
import { BIN, spawnAgent, tempAgentDirs, type SpawnedAgent } from '../../helpers/agent.js';
import { freePort } from '../../helpers/net.js';

const exec = promisify(execFile);
const hasLibiscsi = spawnSync('iscsi-inq', ['-h']).error === undefined;
const OPEN = 'iqn.2003-01.org.outpost.test:logs-open';
const GUARDED = 'iqn.2003-01.org.outpost.test:logs-chap';
const INITIATOR = 'iqn.2003-01.org.outpost.test:logs-host';

async function config(port: number) {
  const tpg = (luns: object[], auth: number) => ({ tag: 1, enable: true, attributes: { authentication: auth, generate_node_acls: auth ? 0 : 1, demo_mode_write_protect: 0 }, luns, portals: [{ ip_address: '127.0.0.1', port }], node_acls: auth ? [{ node_wwn: INITIATOR, chap_userid: 'someone', chap_password: 'Right-Secret-123', mapped_luns: [] }] : [] });
  return tempAgentDirs({
    storage_objects: [{ plugin: 'rd_mcp', name: 'r0', size: 1024 * 1024 }],
    targets: [{ wwn: OPEN, fabric: 'iscsi', tpgs: [tpg([{ index: 0, storage_object: '/backstores/ramdisk/r0' }], 0)] }, { wwn: GUARDED, fabric: 'iscsi', tpgs: [tpg([], 1)] }],
  });
}

const jsonLines = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);

describe('agent logs', { timeout: 120_000 }, () => {
  let agent: SpawnedAgent | undefined;
  after(async () => { await agent?.cleanup(); });

  it('logs logins, logouts and CHAP failures at info, one JSON object a line', { skip: !hasLibiscsi && 'libiscsi-bin not installed' }, async () => {
    const port = await freePort();
    agent = await spawnAgent({ dirs: await config(port), env: { OUTPOST_LOG_LEVEL: 'info' } });
    await exec('iscsi-inq', ['-i', INITIATOR, `iscsi://127.0.0.1:${port}/${OPEN}/0`], { timeout: 10_000 });
    await assert.rejects(exec('iscsi-inq', ['-i', INITIATOR, `iscsi://someone%Wrong-Secret-1234@127.0.0.1:${port}/${GUARDED}/0`], { timeout: 10_000 }));
    const deadline = Date.now() + 5000;
    while (!agent.stderr().includes('iSCSI CHAP authentication failed') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const lines = jsonLines(agent.stderr()); // throws if any line is not JSON
    const info = (msg: string) => lines.find((l) => l.msg === msg && l.level === 30);
    assert.equal(info('iSCSI login')?.initiator, INITIATOR);
    assert.equal(info('iSCSI login')?.target, OPEN);
    assert.equal(info('iSCSI logout')?.initiator, INITIATOR);
    const chap = info('iSCSI CHAP authentication failed');
    assert.equal(chap?.initiator, INITIATOR);
    assert.equal(chap?.target, GUARDED);
    assert.ok(!agent.stderr().includes('Wrong-Secret-1234'), 'the offered secret is never logged');
    assert.ok(!lines.some((l) => l.level < 30), 'nothing below info');
  });

  it('--log-level overrides OUTPOST_LOG_LEVEL; text format is readable; a bad level is refused', async () => {
    const dirs = await config(await freePort());
    const proc = spawn(process.execPath, [BIN, 'agent', '--config', dirs.configPath, '--state-dir', dirs.stateDir, '--log-level', 'debug'], {
      env: { ...process.env, OUTPOST_LOG_LEVEL: 'error', OUTPOST_LOG_FORMAT: 'text' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise((r) => proc.once('exit', r));
    try {
      const deadline = Date.now() + 15_000;
      while (!(existsSync(join(dirs.stateDir, 'admin.sock')) && err.includes('agent started')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(err, /^\d\d:\d\d:\d\d INFO  outpost-agent: agent started /m, err);
      assert.ok(!err.trimStart().startsWith('{'), 'text, not JSON');
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
    const quiet = spawnSync(process.execPath, [BIN, 'agent', '--config', dirs.configPath, '--state-dir', dirs.stateDir, '--log-level', 'loud'], { encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(quiet.status, 0);
    assert.match(quiet.stderr, /unknown log level "loud"/);
  });

  it('formats a JSON line as time, level, name, message and fields', () => {
    const t = Date.UTC(2026, 0, 2, 3, 4, 5);
    assert.equal(formatLogLine(JSON.stringify({ level: 40, time: t, pid: 1, hostname: 'h', name: 'outpost-agent', msg: 'control link closed', code: 1006, reason: 'gone away' })),
      '03:04:05 WARN  outpost-agent: control link closed code=1006 reason="gone away"\n');
  });
});
