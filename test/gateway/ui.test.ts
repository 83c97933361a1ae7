// Issue 14 dashboard, driven in Debian's headless Chromium through playwright-core: log in with the admin
// token (keyboard only), see a demo-like agent and its object LUN, assign its target from the page (issue 18),
// see another agent's nack as its last error, create an ACL with CHAP from the page and see libiscsi log in
// with it, unassign and reassign the target, delete the ACL, then stop the agent and see it offline within 10 s.
// The page is live: it re-reads on the gateway's push notices (/ui/api/live), and its slow poll (30 s, only
// while the channel is down) is longer than every deadline here, so each change seen in time was pushed.
// OUTPOST_UI_SCREENSHOTS=DIR writes the screenshots there (docs/ui/ holds the committed ones).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import WebSocket from 'ws';
import { CONTROL_PATH, encodeMessage } from '../../shared/control-protocol.js';
import { REPO, spawnAgent, tempAgentDirs, type SpawnedAgent } from '../helpers/agent.js';
import { MiB, demoConfig, launchDashboardBrowser, noChromium, assertPushed, noticesSince, recordLive, type DashboardBrowser, type LiveRecord } from '../helpers/dashboard.js';
import { api, startNodeTestGateway, waitFor, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';

const exec = promisify(execFile);
const skip = noChromium;
const TARGET = 'iqn.2026-11.org.outpost.demo:disk1';
const INITIATOR = 'iqn.2026-11.org.outpost.demo:client';
const SECRET = 'Dashboard-Sec-01';

async function inq(port: number, secret = SECRET): Promise<boolean> {
  try {
    await exec('iscsi-inq', ['-i', INITIATOR, `iscsi://ui-user%${secret}@127.0.0.1:${port}/${TARGET}/0`], { timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

describe('dashboard at /ui/ in headless Chromium', { skip, timeout: 300_000 }, () => {
  let gw: TestGateway;
  let s3: S3rverHandle;
  let agent: SpawnedAgent | undefined;
  let browser: DashboardBrowser | undefined;
  let page: Page;
  let rec: LiveRecord;
  let port = 0;
  let shots = '';
  let agentId = '';

  before(async () => {
    shots = process.env.OUTPOST_UI_SCREENSHOTS ?? (await mkdtemp(join(tmpdir(), 'outpost-ui-shots-')));
    await mkdir(shots, { recursive: true });
    s3 = await startS3rver();
    gw = await startNodeTestGateway();
    port = await freePort();
    const dirs = await tempAgentDirs();
    await writeFile(dirs.configPath, JSON.stringify(demoConfig({ target: TARGET, port, dir: dirs.dir, s3, prefix: 'ui/vol1', objectSize: 256 * MiB, cacheSize: 32 * MiB })));
    const enrolled = await api(gw, 'POST', '/v1/agents', { name: 'branch-01' });
    assert.equal(enrolled.status, 201, enrolled.text);
    // Not assigned here: the page assigns the target (policy reaches only assigned agents, issue 18).
    agentId = enrolled.body.id;
    agent = await spawnAgent({ dirs, env: { ...s3.env, OUTPOST_GATEWAY: gw.url, OUTPOST_AGENT_TOKEN: enrolled.body.token } });
    browser = await launchDashboardBrowser();
    page = browser.page;
    page.on('dialog', (d) => void d.accept());
    rec = recordLive(page);
  });
  after(async () => {
    await browser?.close();
    await agent?.cleanup();
    await gw?.dispose();
    await s3?.dispose();
    if (!process.env.OUTPOST_UI_SCREENSHOTS && shots) await rm(shots, { recursive: true, force: true });
  });

  it('serves the page with a strict CSP and nothing from elsewhere', async () => {
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    const r = await page.goto(gw.url + '/ui/');
    assert.equal(r?.status(), 200);
    assert.match(r!.headers()['content-security-policy'] ?? '', /default-src 'none'; script-src 'self'/);
    assert.ok(requests.length >= 3 && requests.every((u) => u.startsWith(gw.url)), `requests: ${requests.join(' ')}`);
    const noToken = await fetch(gw.url + '/ui/api/events');
    assert.equal(noToken.status, 401);
  });

  it('refuses a wrong token, then logs in with the admin token from the keyboard and shows the agent and its LUNs', async () => {
    await page.focus('#token');
    await page.keyboard.type('wrong-token-wrong-token');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#login-error:has-text("refused")');
    assert.equal(await page.isHidden('#fleet-view'), true);
    await page.focus('#token');
    await page.keyboard.type(gw.adminToken);
    await page.keyboard.press('Enter');
    await page.waitForSelector('tr[data-agent="branch-01"] [data-agent-state="online"]', { timeout: 15_000 });
    await page.waitForSelector('#live[data-live="live"]', { timeout: 10_000 });
    await page.waitForSelector('tr[data-lun="/backstores/object/vol1"]', { timeout: 15_000 }); // after the agent's first status report
    const lun = await page.textContent('tr[data-lun="/backstores/object/vol1"]');
    assert.match(lun ?? '', /branch-01.*\/backstores\/object\/vol1 \(object\)ok.*MiB|B/);
    assert.ok(await page.isVisible('tr[data-lun="/backstores/ramdisk/disk1"]'));
    assert.match((await page.textContent('#summary')) ?? '', /1 of 1 agents online/);
    assert.equal(await page.evaluate<boolean>("document.body.innerText.includes('Dashboard-Sec')"), false);
  });

  it('assigns the target to the agent from the keyboard; a bad IQN gets the REST error and changes nothing', async () => {
    const row = 'tr[data-agent="branch-01"]';
    assert.match((await page.textContent(`${row} td[data-label="Assigned targets"]`)) ?? '', /none assigned.*Serves without assignment \(no policy\): iqn\.2026-11\.org\.outpost\.demo:disk1/);
    assert.equal(await page.inputValue('#assign-agent'), agentId, 'the only agent is preselected');
    await page.focus('#assign-target');
    await page.keyboard.type('not an iqn');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#assign-status:has-text("Not assigned: target IQN \\"not an iqn\\" is not a valid iSCSI name")');
    assert.deepEqual((await api(gw, 'GET', `/v1/agents/${agentId}/targets`)).body.targets, []);
    await page.fill('#assign-target', '');
    await page.focus('#assign-target');
    await page.keyboard.type(TARGET);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`#assign-status:has-text("Assigned ${TARGET} to branch-01")`);
    await page.waitForSelector(`${row} li[data-assigned="${TARGET}"] button[aria-label="Unassign ${TARGET} from branch-01"]`);
    assert.deepEqual((await api(gw, 'GET', `/v1/agents/${agentId}/targets`)).body.targets, [TARGET]);
    assert.doesNotMatch((await page.textContent(row)) ?? '', /Serves without assignment/);
  });

  it('shows an ACL created and deleted over REST without a reload, on the push notice', async () => {
    const other = 'iqn.2026-11.org.outpost.demo:rest-client';
    const t0 = Date.now();
    const put = await api(gw, 'PUT', `/v1/acls/${TARGET}/${other}`, { mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: true }] });
    assert.equal(put.status, 200, put.text);
    await page.waitForSelector(`tr[data-acl="${other}"]`, { timeout: 10_000 });
    console.log(`# REST ACL → on the page after ${Date.now() - t0} ms`);
    assert.ok(noticesSince(rec, t0).some((n) => n.topics.includes('acls')), 'an acls notice was pushed');
    assert.match((await page.textContent(`tr[data-acl="${other}"]`)) ?? '', /0→0 ro/);
    const t1 = Date.now();
    assert.equal((await api(gw, 'DELETE', `/v1/acls/${TARGET}/${other}`)).status, 200);
    await page.waitForSelector(`tr[data-acl="${other}"]`, { state: 'detached', timeout: 10_000 });
    assert.ok(noticesSince(rec, t1).some((n) => n.topics.includes('acls')));
    assert.equal(rec.sockets, 1, 'one live socket all along');
  });

  it('creates an ACL with CHAP from the page; libiscsi then logs in; the secret is never shown', async () => {
    assert.equal(await inq(port), false, 'no ACL yet');
    await page.fill('#acl-target', TARGET);
    await page.fill('#acl-initiator', INITIATOR);
    await page.fill('#acl-user', 'ui-user');
    await page.fill('#acl-secret', SECRET);
    await page.fill('#acl-luns', '0, 1');
    await page.focus('#acl-luns');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#acl-status:has-text("Saved the ACL")');
    assert.equal(await page.inputValue('#acl-secret'), '', 'the secret field is cleared once sent');
    await page.waitForSelector(`tr[data-acl="${INITIATOR}"]`);
    const t0 = Date.now();
    await waitFor('iscsi-inq login with the CHAP secret entered on the page', () => inq(port), 10_000, 100);
    console.log(`# dashboard ACL → libiscsi login after ${Date.now() - t0} ms`);
    assert.equal(await inq(port, 'Not-The-Secret-9'), false, 'a wrong secret is refused');
    await page.waitForSelector('#events li:has-text("CHAP failures")', { timeout: 15_000 }); // from the agent's next status report
    const html = await page.content();
    assert.ok(!html.includes(SECRET), 'the secret is not in the page');
    assert.match((await page.textContent(`tr[data-acl="${INITIATOR}"]`)) ?? '', /ui-user/);
    await page.waitForSelector('#events li:has-text("applied")', { timeout: 10_000 });
    // qemu-img writes to the object LUN with the same CHAP secret; the page shows its cache filling
    const src = join(agent!.dir, 'src.img');
    await writeFile(src, randomBytes(8 * MiB));
    const w = await exec('qemu-img', ['convert', '-n', '-f', 'raw', '--object', `secret,id=sec0,data=${SECRET}`, '--target-image-opts', src,
      `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=1,initiator-name=${INITIATOR},user=ui-user,password-secret=sec0`], { timeout: 120_000 });
    assert.equal(w.stderr, '');
    await page.waitForSelector('tr[data-lun="/backstores/object/vol1"] td[data-label="Cached"]:has-text("MiB")', { timeout: 15_000 });
    await page.screenshot({ path: join(shots, 'fleet.png'), fullPage: true });
  });

  it('reads on a phone width without sideways scrolling of the page', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.evaluate('document.activeElement.blur(); window.scrollTo(0, 0)');
    await page.waitForTimeout(300);
    assert.ok(await page.isVisible('tr[data-lun="/backstores/object/vol1"] td[data-label="Dirty"]'), 'LUN rows carry their column names');
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    if (overflow > 1) console.log('# widest: ' + await page.evaluate<string>("[...document.querySelectorAll('body *')].filter(e => !e.closest('.scroll') && e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)).join(' ')"));
    assert.ok(overflow <= 1, `page wider than the screen by ${overflow}px`);
    await page.screenshot({ path: join(shots, 'fleet-phone.png'), fullPage: false });
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('unassigns the target from the keyboard: its ACL stops reaching the agent; assigning again restores it', async () => {
    const item = `tr[data-agent="branch-01"] li[data-assigned="${TARGET}"]`;
    await page.focus(`${item} button`);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`#assign-status:has-text("Unassigned ${TARGET} from branch-01")`);
    await page.waitForSelector(item, { state: 'detached', timeout: 5000 });
    assert.equal(await page.evaluate<string>('document.activeElement.id'), 'assign-target', 'focus stays in the assignment form');
    await waitFor('login refused once the target is unassigned', async () => !(await inq(port)), 10_000, 100);
    await page.keyboard.type(TARGET);
    await page.keyboard.press('Enter');
    await page.waitForSelector(`#assign-status:has-text("Assigned ${TARGET} to branch-01")`);
    await page.waitForSelector(item);
    await waitFor('login admitted again once reassigned', () => inq(port), 10_000, 100);
  });

  it('deletes the ACL from the page; the next login is refused', async () => {
    await page.click(`tr[data-acl="${INITIATOR}"] button`);
    await page.waitForSelector('#acl-status:has-text("Deleted the ACL")');
    await waitFor('login refused after delete', async () => !(await inq(port)), 10_000, 100);
    await page.waitForSelector(`tr[data-acl="${INITIATOR}"]`, { state: 'detached', timeout: 5000 });
  });

  it('marks the agent offline within 10 s of it stopping', async () => {
    const t0 = Date.now();
    assert.equal(await agent!.stop(), 0);
    await page.waitForSelector('tr[data-agent="branch-01"] [data-agent-state="offline"]', { timeout: 10_000 });
    const seen = Date.now();
    const ms = seen - t0;
    console.log(`# agent stop → dashboard offline after ${ms} ms`);
    assert.ok(ms < 10_000);
    assertPushed(rec, t0, seen);
    await page.waitForSelector('#events li:has-text("disconnected")', { timeout: 5000 });
    await page.screenshot({ path: join(shots, 'fleet-offline.png'), fullPage: true });
  });

  it('shows the agent version it reported, and an agent\'s last push error', async () => {
    const version = JSON.parse(await readFile(join(REPO, 'package.json'), 'utf8')).version as string;
    assert.equal(await page.textContent('tr[data-agent="branch-01"] td[data-label="Version"]'), version);
    // A second agent that rejects the snapshot it is sent (over the real control protocol): the
    // gateway records the nack as its last error and the page shows it on that agent's row.
    const other = await api(gw, 'POST', '/v1/agents', { name: 'branch-02' });
    assert.equal(other.status, 201, other.text);
    const ws = new WebSocket(gw.url.replace(/^http/, 'ws') + CONTROL_PATH, { headers: { authorization: `Bearer ${other.body.token}` } });
    const closed = new Promise((r) => ws.once('close', r));
    try {
      await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
      const snapshot = new Promise((r) => ws.once('message', r));
      ws.send(encodeMessage({ type: 'hello', agent_version: 'ui-test', applied_version: 0, served_targets: [] }));
      await snapshot;
      const version = (await api(gw, 'GET', '/v1/agents')).body.policy_version as number;
      ws.send(encodeMessage({ type: 'nack', version, error: 'ui test: portal 127.0.0.1:1 refused' }));
      await page.waitForSelector('tr[data-agent="branch-02"] [data-last-error]:has-text("last error: version")', { timeout: 10_000 });
      assert.match((await page.textContent('tr[data-agent="branch-02"] [data-last-error]')) ?? '', /ui test: portal 127\.0\.0\.1:1 refused/);
      assert.equal(await page.locator('tr[data-agent="branch-01"] [data-last-error]').count(), 0);
    } finally {
      ws.close();
      await closed;
    }
    assert.equal((await api(gw, 'DELETE', `/v1/agents/${other.body.id}`)).status, 200);
    await page.waitForSelector('tr[data-agent="branch-02"]', { state: 'detached', timeout: 10_000 });
  });

  it('after a gateway restart the page redials its live channel and is pushed changes again', async () => {
    await gw.stop();
    await page.waitForSelector('#live[data-live="down"]', { timeout: 10_000 });
    assert.match((await page.textContent('#live')) ?? '', /refreshing every 30 s, reconnecting in \d+ s/);
    await gw.start();
    await page.waitForSelector('#live[data-live="live"]', { timeout: 20_000 });
    assert.equal(rec.sockets, 2, 'a second socket after the restart');
    const t0 = Date.now();
    assert.equal((await api(gw, 'POST', '/v1/agents', { name: 'branch-03' })).status, 201);
    await page.waitForSelector('tr[data-agent="branch-03"]', { timeout: 10_000 });
    assertPushed(rec, t0, Date.now());
  });
});
