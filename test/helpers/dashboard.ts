// The dashboard tests' shared setup: Debian's headless Chromium through playwright-core (a throwaway
// profile), logging in with the admin token from the keyboard, an agent config with a RAM disk and an
// object LUN, and a record of the live channel's frames and of the page's REST reads (to tell a push
// from a poll).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type { TestGateway } from './gateway.js';

export const CHROMIUM = '/usr/bin/chromium';
export const noChromium = !existsSync(CHROMIUM) && 'Debian chromium not installed (.ci/run installs it)';
export const MiB = 1024 * 1024;

export interface DashboardBrowser {
  readonly ctx: BrowserContext;
  readonly page: Page;
  close(): Promise<void>;
}

export async function launchDashboardBrowser(): Promise<DashboardBrowser> {
  const profile = await mkdtemp(join(tmpdir(), 'outpost-chromium-'));
  let ctx: BrowserContext | undefined;
  try {
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1280, height: 900 },
    });
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const c = ctx;
    return { ctx: c, page, close: async () => { await c.close(); await rm(profile, { recursive: true, force: true }); } };
  } catch (e) {
    await ctx?.close();
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
}

/** Opens /ui/ and logs in with the admin token typed from the keyboard. */
export async function loginDashboard(page: Page, gw: TestGateway): Promise<void> {
  await page.goto(gw.url + '/ui/');
  await page.focus('#token');
  await page.keyboard.type(gw.adminToken);
  await page.keyboard.press('Enter');
}

/** What the page received on its live channel and when it read the fleet over REST (ms since the epoch). */
export interface LiveRecord {
  readonly frames: { at: number; data: string }[];
  readonly agentReads: number[];
  /** Live-channel sockets the page opened. */
  sockets: number;
}

/** Starts recording before the page is opened (attach first, then loginDashboard). */
export function recordLive(page: Page): LiveRecord {
  const rec: LiveRecord = { frames: [], agentReads: [], sockets: 0 };
  page.on('websocket', (ws) => {
    if (!ws.url().endsWith('/ui/api/live')) return;
    rec.sockets++;
    ws.on('framereceived', (f) => rec.frames.push({ at: Date.now(), data: String(f.payload) }));
  });
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/v1/agents' && r.method() === 'GET') rec.agentReads.push(Date.now());
  });
  return rec;
}

/** The change notices (not hellos, not pongs) received since `since`. */
export const noticesSince = (rec: LiveRecord, since: number): { at: number; topics: string[] }[] =>
  rec.frames.filter((f) => f.at >= since && f.data.startsWith('{')).map((f) => ({ ...(JSON.parse(f.data) as { type: string; topics: string[] }), at: f.at }))
    .filter((m) => m.type === 'changed').map((m) => ({ at: m.at, topics: m.topics }));

/**
 * The page learnt of the change by a push: notices came between `from` and `to`, and each fleet read in
 * that span followed one (the slow poll, 30 s, cannot fire within a 10 s deadline anyway).
 */
export function assertPushed(rec: LiveRecord, from: number, to: number): void {
  const notices = noticesSince(rec, from).filter((n) => n.at <= to);
  assert.ok(notices.length > 0, `a change notice was pushed between +0 and +${to - from} ms; frames: ${rec.frames.map((f) => `+${f.at - from} ${f.data}`).slice(-6).join(' | ')}; reads: ${rec.agentReads.map((r) => r - from).slice(-6).join(' ')}`);
  const reads = rec.agentReads.filter((t) => t >= from && t <= to);
  assert.ok(reads.length > 0, 'the page re-read the fleet');
  for (const r of reads) assert.ok(notices.some((n) => n.at <= r + 100), `a read at +${r - from} ms before any notice`);
}

export interface DemoConfigOptions {
  readonly target: string;
  readonly port: number;
  readonly dir: string;
  readonly s3: { bucket: string; endpoint: string };
  readonly prefix: string;
  readonly objectSize: number;
  readonly cacheSize: number;
  /** CHAP required and no local ACLs (the gateway's ACLs), or open to the given initiator. */
  readonly initiator?: string;
}

/** A saveconfig.json like the demo's: LUN 0 a 64 MiB RAM disk, LUN 1 an object volume. */
export function demoConfig(o: DemoConfigOptions): object {
  const acls = o.initiator ? [{ node_wwn: o.initiator, mapped_luns: [{ index: 0, tpg_lun: 0, write_protect: false }, { index: 1, tpg_lun: 1, write_protect: false }] }] : [];
  return {
    storage_objects: [
      { plugin: 'rd_mcp', name: 'disk1', size: 64 * MiB },
      { plugin: 'object', name: 'vol1', size: o.objectSize, bucket: o.s3.bucket, prefix: o.prefix, endpoint: o.s3.endpoint, region: 'us-east-1', force_path_style: true, cache_dir: join(o.dir, 'cache'), cache_size: o.cacheSize },
    ],
    targets: [{ wwn: o.target, fabric: 'iscsi', tpgs: [{ tag: 1, enable: true, attributes: { authentication: o.initiator ? 0 : 1, generate_node_acls: 0 },
      luns: [{ index: 0, storage_object: '/backstores/ramdisk/disk1' }, { index: 1, storage_object: '/backstores/object/vol1' }], portals: [{ ip_address: '127.0.0.1', port: o.port }], node_acls: acls }] }],
  };
}
