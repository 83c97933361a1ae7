// Two sites for the migration tests: s3rver (the bucket), the Node gateway, agent A serving an object LUN on
// 127.0.0.1 (TPG 1), agent B with no target yet on 127.0.0.2, both enrolled and connected; plus a
// path-aware initiator (two raw sessions, one per site) that writes patterns and fails over as
// dm-multipath does: a NOT READY or UNAVAILABLE path is left for the other one.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnAgent, type SpawnedAgent } from '../../helpers/agent.js';
import { api, startNodeTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import type { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { freePort } from '../../helpers/net.js';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { RTPG_CDB, parseRtpg, rawSession, scsi, type ScsiResult } from '../multipath/helpers.js';

export const TARGET = 'iqn.2026-01.dev.outpost.test:multipath'; // the name the raw-session helper logs in to
export const MiB = 1024 * 1024;

export interface Site {
  agent: SpawnedAgent;
  readonly id: string;
  readonly token: string;
  readonly portal: { ip: string; port: number };
}

export interface Sites {
  readonly s3: S3rverHandle;
  readonly gw: TestGateway;
  readonly a: Site;
  readonly b: Site;
  /** POST /v1/migrations; resolves with the id. */
  migrate(extra?: Record<string, unknown>): Promise<string>;
  /** Polls GET /v1/migrations/{id} until it is no longer running. */
  settle(id: string, timeoutMs?: number): Promise<Record<string, any>>;
  dispose(): Promise<void>;
}

export type SitePlugin = 'object' | 'rd_mcp' | 'fileio';
const DIR_OF: Record<SitePlugin, string> = { object: 'object', rd_mcp: 'ramdisk', fileio: 'fileio' };

/** The object-volume settings the tests use at both sites (short lease steps, quick uploads). */
export const VOLUME_TUNING = { upload_delay_ms: 50, commit_interval_ms: 200, lease_ms: 60_000, lease_settle_ms: 1000, read_timeout_ms: 5000 } as const;

export function objectConfig(s3: S3rverHandle, o: { size: number; cacheSize: number; prefix: string; portal: { ip: string; port: number }; plugin?: SitePlugin; dev?: string }): object {
  const so = o.plugin === 'rd_mcp'
    ? { plugin: 'rd_mcp', name: 'vol1', size: o.size, attributes: { block_size: 512 } }
    : o.plugin === 'fileio'
    ? { plugin: 'fileio', name: 'vol1', size: o.size, dev: o.dev, write_back: false, attributes: { block_size: 512 } }
    : { plugin: 'object', name: 'vol1', size: o.size, bucket: s3.bucket, prefix: o.prefix, endpoint: s3.endpoint, force_path_style: true, cache_size: o.cacheSize,
        ...VOLUME_TUNING, attributes: { block_size: 512 } };
  return {
    fabric_modules: [],
    storage_objects: [{ ...so, wwn: '0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6', alua_tpgs: [{ name: 'site_a', tg_pt_gp_id: 10, alua_access_state: 0, alua_access_type: 1, preferred: 1 }] }],
    targets: [{
      fabric: 'iscsi', wwn: TARGET,
      tpgs: [{
        tag: 1, enable: true,
        attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 },
        parameters: { AuthMethod: 'None' },
        luns: [{ index: 0, storage_object: `/backstores/${DIR_OF[o.plugin ?? 'object']}/vol1`, alua_tg_pt_gp_name: 'site_a' }],
        node_acls: [],
        portals: [{ ip_address: o.portal.ip, port: o.portal.port, iser: false, offload: false }],
      }],
    }],
  };
}

export async function startSites(o: { size: number; cacheSize?: number; prefix?: string; plugin?: SitePlugin }): Promise<Sites> {
  const s3 = await startS3rver();
  const gw = await startNodeTestGateway();
  // a fileio LUN's file lives outside the agent's dirs, so a restarted agent finds it again
  const devDir = o.plugin === 'fileio' ? await mkdtemp(join(tmpdir(), 'outpost-fileio-')) : undefined;
  const dev = devDir && join(devDir, 'vol1.img');
  const started: SpawnedAgent[] = [];
  try {
    const site = async (name: string, ip: string, config: (portal: { ip: string; port: number }) => object): Promise<Site> => {
      const enrolled = await api(gw, 'POST', '/v1/agents', { name });
      assert.equal(enrolled.status, 201, enrolled.text);
      const portal = { ip, port: await freePort(ip) };
      const agent = await spawnAgent({ config: config(portal), env: { ...s3.env, OUTPOST_GATEWAY: gw.url, OUTPOST_AGENT_TOKEN: enrolled.body.token } });
      started.push(agent);
      return { agent, id: enrolled.body.id, token: enrolled.body.token, portal };
    };
    const prefix = o.prefix ?? 'migrate/vol1';
    const a = await site('site-a', '127.0.0.1', (portal) => objectConfig(s3, { size: o.size, cacheSize: o.cacheSize ?? 64 * MiB, prefix, portal, plugin: o.plugin, dev }));
    const b = await site('site-b', '127.0.0.2', () => ({ fabric_modules: [], storage_objects: [], targets: [] }));
    for (const s of [a, b]) {
      await waitFor(`agent ${s.id} connected`, async () => (await api(gw, 'GET', '/v1/agents')).body.agents.find((x: { id: string }) => x.id === s.id)?.connected, 15_000, 100);
    }
    return {
      s3, gw, a, b,
      async migrate(extra = {}) {
        const r = await api(gw, 'POST', '/v1/migrations', { target: TARGET, lun: 0, from: a.id, to: b.id, to_portal: `${b.portal.ip}:${b.portal.port}`, ...extra });
        assert.equal(r.status, 202, r.text);
        return r.body.id as string;
      },
      async settle(id, timeoutMs = 120_000) {
        return waitFor(`migration ${id} settled`, async () => {
          const r = await api(gw, 'GET', `/v1/migrations/${id}`);
          return r.body.state !== 'running' ? r.body : undefined;
        }, timeoutMs, 100);
      },
      async dispose() {
        for (const x of new Set([...started, a.agent, b.agent])) await x.cleanup();
        await gw.dispose();
        await s3.dispose();
        if (devDir) await rm(devDir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    for (const x of started) await x.cleanup();
    await gw.dispose();
    await s3.dispose();
    if (devDir) await rm(devDir, { recursive: true, force: true });
    throw e;
  }
}

/** qemu's iSCSI URL of the test LUN through a site's portal. */
export const lunUrl = (p: { ip: string; port: number }): string => `iscsi://${p.ip}:${p.port}/${TARGET}/0`;

/** One READ(10) of 8 blocks at LBA 0 on `c`, past the unit attentions an ALUA change raises. */
export async function readPastUa(c: RawIscsiClient): Promise<ScsiResult> {
  let r = await scsi(c, [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], 4096);
  for (let i = 0; i < 4 && r.sense?.[0] === 6; i++) r = await scsi(c, [0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0], 4096);
  return r;
}

/** Brings agent B back on its own dirs (after a test stopped it) and waits until the gateway sees it connected. */
export async function restartB(s: Sites): Promise<void> {
  await s.b.agent.stop().catch(() => {});
  s.b.agent = await spawnAgent({ dirs: s.b.agent, env: { ...s.s3.env, OUTPOST_GATEWAY: s.gw.url, OUTPOST_AGENT_TOKEN: s.b.token } });
  await waitFor('B connected again', async () => (await api(s.gw, 'GET', '/v1/agents')).body.agents.find((x: { id: string }) => x.id === s.b.id)?.connected, 15_000, 100);
}

/** Polls GET /v1/migrations/{id} until its phase matches (a failed migration fails the wait with its error). */
export async function waitForPhase(s: Sites, id: string, phase: RegExp, timeoutMs = 60_000): Promise<void> {
  await waitFor(`migration phase ${phase}`, async () => {
    const m = (await api(s.gw, 'GET', `/v1/migrations/${id}`)).body;
    assert.notEqual(m.state, 'failed', m.error);
    return phase.test(m.phase);
  }, timeoutMs, 100);
}

export const WRITE_BLOCKS = 8; // 4 KiB per write: within every data segment length the raw session negotiates

function write10(lba: number, blocks: number): number[] {
  return [0x2a, 0, (lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, 0, blocks, 0];
}
function read10(lba: number, blocks: number): number[] {
  return [0x28, 0, (lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, (blocks >> 8) & 0xff, blocks & 0xff, 0];
}

/** The bytes of write number `seq` (distinct per write, so a lost or stale write cannot read back right). */
export function pattern(seq: number): Buffer {
  const b = Buffer.alloc(WRITE_BLOCKS * 512);
  for (let i = 0; i < b.length; i += 4) b.writeUInt32BE((seq * 2654435761 + i) >>> 0, i);
  return b;
}

/** A path that cannot take the write now: unit attention, NOT READY (ALUA), or the LUN gone from that port. */
const retryable = (r: ScsiResult): boolean => r.status === 2 && (r.sense?.[0] === 6 || r.sense?.[0] === 2 || (r.sense?.[0] === 5 && r.sense[1] === 0x2500));
const pathDown = (r: ScsiResult): boolean => r.sense?.[0] === 2 || r.sense?.[0] === 5;

/**
 * A multipath initiator over raw sessions: each write goes to the current path; a unit attention or NOT
 * READY (standby, transitioning, unavailable) moves it to the next path and it is retried there.
 */
export class PathWriter {
  readonly paths: RawIscsiClient[] = [];
  private current = 0;
  /** lba → seq of the last write there the target acknowledged (GOOD status). */
  readonly acked = new Map<number, number>();
  /** Longest time between two acknowledged writes, and when it ended. */
  maxGapMs = 0;
  lastAck = 0;
  firstAckOnPath = new Map<number, number>();
  errors: string[] = [];
  /** Writes acknowledged in all (rewrites of one LBA included). */
  ackCount = 0;
  /** The last refusal seen (for a failing test's message). */
  lastRefusal = '';
  private stopping = false;
  private loop: Promise<void> | undefined;

  async addPath(ip: string, port: number, isid: string): Promise<number> {
    const c = await rawSession(ip, port, 'iqn.2026-01.test:migration-host', isid);
    this.paths.push(c);
    return this.paths.length - 1;
  }

  /** Sends one command on path `i`, skipping unit attentions (they report, they do not refuse). */
  async command(i: number, cdb: number[], inLen = 0, out?: Buffer): Promise<ScsiResult> {
    for (let n = 0; n < 8; n++) {
      const r = await scsi(this.paths[i]!, cdb, inLen, out);
      if (!(r.status === 2 && r.sense?.[0] === 6)) return r;
    }
    throw new Error('unit attentions never cleared');
  }

  /** Writes seq-numbered patterns over `blocks` worth of LBAs (wrapping) until stop(). */
  start(blocks: number): void {
    this.loop = (async () => {
      let seq = 0;
      while (!this.stopping) {
        const lba = (seq * WRITE_BLOCKS) % blocks;
        const data = pattern(seq);
        const giveUp = Date.now() + 150_000;
        for (;;) {
          if (Date.now() > giveUp) throw new Error(`write ${seq} never completed on any path`);
          const path = this.current;
          const r = await scsi(this.paths[path]!, write10(lba, WRITE_BLOCKS), 0, data).catch((e: Error) => {
            throw new Error(`write ${seq} on path ${path} (after ${this.lastRefusal || 'no refusal'}): ${e.message}`);
          });
          if (r.status === 0) {
            const t = Date.now();
            if (this.lastAck) this.maxGapMs = Math.max(this.maxGapMs, t - this.lastAck);
            this.lastAck = t;
            if (!this.firstAckOnPath.has(this.current)) this.firstAckOnPath.set(this.current, t);
            this.ackCount++;
            this.acked.set(lba, seq); // a rewrite of the same LBA supersedes an older acknowledged write there
            break;
          }
          this.lastRefusal = `path ${this.current}: status ${r.status} sense ${JSON.stringify(r.sense)}`;
          if (!retryable(r)) throw new Error(`write ${seq} failed: status ${r.status} sense ${JSON.stringify(r.sense)}`);
          if (pathDown(r)) {
            this.current = (this.current + 1) % this.paths.length; // as dm-multipath: try the other path
            await new Promise((res) => setTimeout(res, 20));
          }
        }
        seq++;
      }
    })().catch((e: Error) => { this.errors.push(e.message); });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  /** Reads every acknowledged write back through path `i`; returns the seqs whose bytes differ. */
  async verify(i: number): Promise<number[]> {
    const bad: number[] = [];
    for (const [lba, seq] of this.acked) {
      const r = await this.command(i, read10(lba, WRITE_BLOCKS), WRITE_BLOCKS * 512);
      if (r.status !== 0 || !r.data.equals(pattern(seq))) bad.push(seq);
    }
    return bad;
  }

  close(): void {
    for (const c of this.paths) c.close();
  }
}

/** After a rollback: writes are acknowledged through A again, every acknowledged one reads back, and A is active/optimized. */
export async function assertAServesAgain(w: PathWriter): Promise<void> {
  const acked = w.ackCount;
  await waitFor('writes acknowledged through A again', () => w.ackCount > acked + 20 || w.errors.length > 0, 90_000, 100);
  await w.stop();
  assert.deepEqual(w.errors, []);
  assert.deepEqual(await w.verify(0), [], 'every acknowledged write reads back through A');
  assert.equal(parseRtpg((await w.command(0, RTPG_CDB, 1024)).data)[0]!.state, 0, 'A active/optimized');
}
