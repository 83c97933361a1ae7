// Issue 14 dashboard, live figures, in Debian's headless Chromium (playwright-core): the throughput chart of a
// LUN shows points that move while qemu-img writes and fall back to zero when it stops; the recovery point
// chart of an object LUN; and the jobs panel shows a flush (`outpost … flush`) with a progress bar to 100 %.
// OUTPOST_UI_SCREENSHOTS=DIR writes docs/ui/fleet-charts.png there.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { spawnAgent, tempAgentDirs, type AgentDirs, type SpawnedAgent } from '../helpers/agent.js';
import { MiB, demoConfig, launchDashboardBrowser, loginDashboard, noChromium, type DashboardBrowser } from '../helpers/dashboard.js';
import { api, startNodeTestGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../helpers/s3rver.js';
import { startThrottleProxy, type ThrottleProxy } from '../helpers/throttle-proxy.js';
import { run } from '../agent/object/shell-agent.js';

const skip = noChromium || (spawnSync('qemu-img', ['--version']).status !== 0 && 'qemu-img not installed');
const TARGET = 'iqn.2026-11.org.outpost.demo:charts';
const INITIATOR = 'iqn.2026-11.org.outpost.demo:charts-client';
const DIRTY = 32 * MiB;

describe('dashboard charts and jobs in headless Chromium', { skip, timeout: 300_000 }, () => {
  let gw: TestGateway;
  let s3: S3rverHandle;
  let proxy: ThrottleProxy;
  let dirs: AgentDirs;
  let agent: SpawnedAgent | undefined;
  let browser: DashboardBrowser | undefined;
  let page: Page;
  let port = 0;
  let shots = '';
  const children = new Set<ChildProcess>();

  const image = (lun: number) => `json:${JSON.stringify({ driver: 'raw', file: { driver: 'iscsi', transport: 'tcp', portal: `127.0.0.1:${port}`, target: TARGET, lun, 'initiator-name': INITIATOR } })}`;
  const attr = async (selector: string, name: string): Promise<string | undefined> => (await (await page.$(selector))?.getAttribute(name)) ?? undefined;
  /** The write line of a LUN's throughput chart: its points and its newest value. */
  const writeLine = async (lun: string) => {
    const sel = `figure[data-chart-lun="${lun}"] [data-chart="throughput"] polyline[data-series="write"]`;
    const points = await attr(sel, 'points');
    return points === undefined ? undefined : { points, last: Number(await attr(sel, 'data-last')) };
  };
  const progressOf = async (row: string) => Number(await attr(`${row} progress`, 'value'));
  const until = async <T>(what: string, fn: () => Promise<T | undefined | false>, ms: number): Promise<T> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await fn();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  before(async () => {
    shots = process.env.OUTPOST_UI_SCREENSHOTS ?? '';
    if (shots) await mkdir(shots, { recursive: true });
    s3 = await startS3rver();
    proxy = await startThrottleProxy(s3.port, 3 * MiB); // the flush lasts ~10 s: the 5 s status sees it run
    gw = await startNodeTestGateway();
    port = await freePort();
    dirs = await tempAgentDirs();
    const config = demoConfig({ target: TARGET, port, dir: dirs.dir, s3: { bucket: s3.bucket, endpoint: proxy.endpoint }, prefix: 'charts/vol1', objectSize: 128 * MiB, cacheSize: 96 * MiB, initiator: INITIATOR });
    await writeFile(dirs.configPath, JSON.stringify(config));
    const enrolled = await api(gw, 'POST', '/v1/agents', { name: 'branch-02' });
    assert.equal(enrolled.status, 201, enrolled.text);
    agent = await spawnAgent({ dirs, env: { ...s3.env, OUTPOST_GATEWAY: gw.url, OUTPOST_AGENT_TOKEN: enrolled.body.token } });
    browser = await launchDashboardBrowser();
    page = browser.page;
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await loginDashboard(page, gw);
    await page.waitForSelector('figure[data-chart-lun="/backstores/ramdisk/disk1"] [data-chart="throughput"]', { timeout: 20_000 });
    assert.ok(requests.some((u) => u.endsWith('/ui/charts.js')) && requests.every((u) => u.startsWith(gw.url)), `requests: ${requests.join(' ')}`);
  });
  after(async () => {
    for (const c of children) c.kill('SIGKILL');
    await browser?.close();
    await agent?.cleanup();
    await gw?.dispose();
    await proxy?.close();
    await s3?.dispose();
    if (dirs) await rm(dirs.dir, { recursive: true, force: true });
  });

  it('the throughput chart moves while qemu-img writes and falls back to zero after', { timeout: 150_000 }, async () => {
    const lun = '/backstores/ramdisk/disk1';
    const idle = await writeLine(lun);
    assert.equal(idle?.last, 0, 'an idle LUN charts 0 B/s');
    // qemu-img writing for as long as the test looks: 64 KiB writes, queue depth 4, over and over
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const c = spawn('qemu-img', ['bench', '-w', '-c', '4000', '-d', '4', '-s', '65536', image(0)], { stdio: 'ignore' });
        children.add(c);
        const code = await new Promise<number | null>((r) => c.once('exit', (x) => r(x)));
        children.delete(c);
        if (writing && code !== 0) throw new Error(`qemu-img bench exited ${code}`);
      }
    })();
    try {
      const first = await until('a write rate on the chart', async () => { const w = await writeLine(lun); return w && w.last > 0 && w; }, 40_000);
      const second = await until('the chart to move on', async () => { const w = await writeLine(lun); return w && w.last > 0 && w.points !== first.points && w; }, 20_000);
      assert.notEqual(second.points, first.points);
      const label = await page.getAttribute(`figure[data-chart-lun="${lun}"] [data-chart="throughput"] svg`, 'aria-label');
      assert.match(label ?? '', /now write [\d.]+ [kMG]B\/s, read /);
      if (shots) await page.locator('#charts-h').scrollIntoViewIfNeeded();
    } finally {
      writing = false;
      await writer.catch((e: Error) => assert.fail(e.message));
    }
    await until('the write rate to fall to 0', async () => (await writeLine(lun))?.last === 0, 60_000);
    // placed by time: the newest sample is a recent reading, and its value is drawn on to now (the right edge)
    const sel = `figure[data-chart-lun="${lun}"] [data-chart="throughput"] polyline[data-series="write"]`;
    const age = Date.now() - Date.parse((await attr(sel, 'data-last-at')) ?? '');
    assert.ok(age >= 0 && age < 30_000, `newest sample ${age} ms old`);
    assert.match((await attr(sel, 'points')) ?? '', /300\.0,[\d.]+$/);
  });

  it('the jobs panel shows a flush with its progress bar, to 100 %; the recovery point chart rises then falls', { timeout: 150_000 }, async () => {
    const src = join(dirs.dir, 'src.img');
    await writeFile(src, randomBytes(DIRTY));
    await s3.stop(); // what qemu-img writes stays dirty until the flush
    const w = await run('qemu-img', ['convert', '-n', '-t', 'writeback', '-f', 'raw', '--target-image-opts', src,
      `driver=iscsi,transport=tcp,portal=127.0.0.1:${port},target=${TARGET},lun=1,initiator-name=${INITIATOR}`]);
    assert.equal(w.code, 0, `qemu-img convert: ${w.out}`);
    const rpoOf = async () => Number(await attr('figure[data-chart-lun="/backstores/object/vol1"] [data-chart="recovery-point"] polyline', 'data-last') ?? NaN);
    await until('a recovery point above 2 s on the chart', async () => (await rpoOf()) > 2, 30_000);
    await s3.start();
    const flush = spawn(process.execPath, [join(import.meta.dirname, '../../../bin/outpost.js'), '--state-dir', dirs.stateDir, '/backstores/object/vol1', 'flush'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(flush);
    let out = '';
    flush.stdout!.on('data', (d: Buffer) => (out += d));
    flush.stderr!.on('data', (d: Buffer) => (out += d));
    const flushed = new Promise<number | null>((r) => flush.once('exit', (c) => { children.delete(flush); r(c); }));
    const running = await until('a running flush in the jobs panel', async () => {
      const r = await page.$('#jobs tr[data-job-state="running"]');
      return r ? { text: (await r.textContent()) ?? '', value: await progressOf('#jobs tr[data-job-state="running"]') } : undefined;
    }, 30_000);
    assert.match(running.text, /branch-02flush #\d+\/backstores\/object\/vol1running \(uploading\)/);
    assert.ok(running.value < 100, `progress ${running.value}`);
    if (shots) {
      await page.locator('#jobs-h').scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(shots, 'fleet-charts.png'), fullPage: true });
    }
    assert.equal(await flushed, 0, out);
    const done = await until('the flush done at 100 %', async () => {
      const r = await page.$('#jobs tr[data-job-state="done"]');
      return r && (await progressOf('#jobs tr[data-job-state="done"]')) === 100 ? (await r.textContent()) ?? '' : undefined;
    }, 30_000);
    assert.match(done, /100 % · [\d.]+ MB of [\d.]+ MB/);
    await until('the recovery point back at 0', async () => (await rpoOf()) === 0, 30_000);
  });
});
