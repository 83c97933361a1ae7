// Shared pieces of the multipath tests: an agent config with several TPGs/portals on loopback, a raw
// SCSI command over the test initiator (for paths libiscsi cannot log in through: its login ends with
// TEST UNIT READY, which a standby path refuses), and libiscsi output parsing.
import assert from 'node:assert/strict';
import { RawIscsiClient } from '../../helpers/iscsi-client.js';
import { Opcode } from '../../../agent/iscsi/pdu/constants.js';
import type { DataIn, ScsiCommandHeader, ScsiResponseHeader } from '../../../agent/iscsi/pdu/types.js';

export const TARGET = 'iqn.2026-01.dev.outpost.test:multipath';
export const WWN = '6f1d2c3b-4a59-4e68-8d7c-0123456789ab';

export interface TpgSpec {
  tag: number;
  portals: Array<{ ip: string; port: number }>;
  aluaGroup?: string;
}

/** saveconfig.json (rtslib schema): one ramdisk LU exported through every TPG given, demo-mode ACLs. */
export function multipathConfig(tpgs: TpgSpec[], aluaTpgs?: object[], sizeMiB = 64): object {
  return {
    fabric_modules: [],
    storage_objects: [{ plugin: 'rd_mcp', name: 'mp', size: sizeMiB << 20, wwn: WWN, attributes: { block_size: 512 }, ...(aluaTpgs ? { alua_tpgs: aluaTpgs } : {}) }],
    targets: [{
      fabric: 'iscsi', wwn: TARGET,
      tpgs: tpgs.map((t) => ({
        tag: t.tag, enable: true,
        attributes: { authentication: 0, generate_node_acls: 1, demo_mode_write_protect: 0, cache_dynamic_acls: 1 },
        parameters: { AuthMethod: 'None' },
        luns: [{ index: 0, storage_object: '/backstores/ramdisk/mp', ...(t.aluaGroup ? { alua_tg_pt_gp_name: t.aluaGroup } : {}) }],
        node_acls: [],
        portals: t.portals.map((p) => ({ ip_address: p.ip, port: p.port, iser: false, offload: false })),
      })),
    }],
  };
}

export const lunUrl = (ip: string, port: number) => `iscsi://${ip}:${port}/${TARGET}/0`;

export interface ScsiResult {
  status: number;
  data: Buffer;
  /** [key, ASC<<8|ASCQ] from fixed-format sense, when CHECK CONDITION. */
  sense?: [number, number];
}

/** Logs in a raw initiator port through one portal. */
export async function rawSession(ip: string, port: number, initiator: string, isid?: string): Promise<RawIscsiClient> {
  const c = await RawIscsiClient.connect(port, ip);
  if (isid) c.isid = isid;
  const r = await c.login(initiator, TARGET, [['HeaderDigest', 'None'], ['DataDigest', 'None'], ['ImmediateData', 'Yes'], ['InitialR2T', 'No']]);
  assert.equal(r.h.statusClass, 0, `login through ${ip}:${port} failed`);
  c.cmdSN = r.h.expCmdSN;
  return c;
}

/** One SCSI command (read direction or none; `out` as immediate data) and its complete result. */
export async function scsi(c: RawIscsiClient, cdb: number[] | Buffer, inLen = 0, out?: Buffer): Promise<ScsiResult> {
  const itt = c.nextItt();
  const b = Buffer.alloc(16);
  Buffer.from(cdb).copy(b);
  const h: ScsiCommandHeader = {
    opcode: Opcode.SCSI_COMMAND, immediate: false, itt, final: true, read: inLen > 0, write: out !== undefined,
    attr: 1, lun: 0, expectedDataTransferLength: out ? out.length : inLen, cmdSN: c.cmdSN, expStatSN: c.expStatSN, cdb: b,
  };
  c.cmdSN = (c.cmdSN + 1) >>> 0;
  c.send(h, out ? [out] : []);
  const parts: Buffer[] = [];
  for (;;) {
    // Generous: the CI box is shared, and a slow answer is not what these tests are about.
    const p = await c.next(15_000);
    assert.ok(p, 'no response from the target within 15 s');
    if (p.header.itt !== itt) continue;
    if (p.header.opcode === Opcode.DATA_IN) {
      const d = p.header as DataIn;
      parts.push(p.data);
      if (d.hasStatus) {
        c.expStatSN = (d.statSN + 1) >>> 0;
        return { status: d.status, data: Buffer.concat(parts) };
      }
      continue;
    }
    assert.equal(p.header.opcode, Opcode.SCSI_RESPONSE);
    const r = p.header as ScsiResponseHeader;
    c.expStatSN = (r.statSN + 1) >>> 0;
    let sense: [number, number] | undefined;
    if (p.data.length >= 2 + 14) {
      const s = p.data.subarray(2);
      sense = [s[2]! & 0x0f, (s[12]! << 8) | s[13]!];
    }
    return { status: r.status, data: Buffer.concat(parts), sense };
  }
}

/** Repeats a command while it reports a unit attention (the first command after login gets POWER ON). */
export async function scsiPastUa(c: RawIscsiClient, cdb: number[], inLen = 0): Promise<ScsiResult> {
  for (let i = 0; i < 8; i++) {
    const r = await scsi(c, cdb, inLen);
    if (!(r.status === 2 && r.sense?.[0] === 6)) return r;
  }
  throw new Error('unit attentions never cleared');
}

export interface Designator { assoc: number; type: number; value: Buffer }

/** SPC-4 §7.8.6 device identification page → designators. */
export function parseVpd83(page: Buffer): Designator[] {
  assert.equal(page[1], 0x83);
  const end = 4 + page.readUInt16BE(2);
  const out: Designator[] = [];
  for (let off = 4; off + 4 <= end;) {
    const len = page[off + 3]!;
    out.push({ assoc: (page[off + 1]! >> 4) & 3, type: page[off + 1]! & 0x0f, value: page.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  return out;
}

export interface RtpgGroup { state: number; preferred: boolean; id: number; ports: number[] }

/** SPC-4 §6.37 REPORT TARGET PORT GROUPS parameter data (length-only header) → groups. */
export function parseRtpg(data: Buffer): RtpgGroup[] {
  const end = 4 + data.readUInt32BE(0);
  const out: RtpgGroup[] = [];
  for (let off = 4; off + 8 <= end;) {
    const n = data[off + 7]!;
    const ports: number[] = [];
    for (let i = 0; i < n; i++) ports.push(data.readUInt16BE(off + 8 + 4 * i + 2));
    out.push({ state: data[off]! & 0x0f, preferred: (data[off]! & 0x80) !== 0, id: data.readUInt16BE(off + 2), ports });
    off += 8 + 4 * n;
  }
  return out;
}

export const RTPG_CDB = [0xa3, 0x0a, 0, 0, 0, 0, 0, 0, 0x04, 0, 0, 0];
export const INQUIRY_83 = [0x12, 0x01, 0x83, 0x04, 0x00, 0];

/**
 * iscsi-test-cu's CUnit summary: every test line must say "passed" — SKIPPED or FAILED lines, or a
 * summary with fewer passes than tests, fail the assertion.
 */
export function assertCunitAllPassed(out: string, expectTests: number): void {
  const tests = [...out.matchAll(/^\s*Test: (\S+) \.\.\.(.*)$/gm)];
  assert.equal(tests.length, expectTests, `expected ${expectTests} tests:\n${out.slice(-3000)}`);
  assert.doesNotMatch(out, /SKIPPED|FAILED/, out.slice(-3000)); // libiscsi counts CU_PASS("[SKIPPED] …") as a pass
  const summary = /^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(out);
  assert.ok(summary, out.slice(-2000));
  const [, total, ran, passed, failed, inactive] = summary.map(Number);
  assert.deepEqual({ total, ran, passed, failed, inactive }, { total: expectTests, ran: expectTests, passed: expectTests, failed: 0, inactive: 0 }, out.slice(-2000));
}
