// Test-only raw iSCSI initiator over TCP, built on the fabric's own codecs: sends arbitrary (also
// malformed) PDUs and reads the target's answers, for robustness tests real initiators cannot do.
import { connect, type Socket } from 'node:net';
import { PduReceiver, type RawPdu } from '../../agent/iscsi/receiver.js';
import { decodeHeader } from '../../agent/iscsi/pdu/parser.js';
import { framePdu } from '../../agent/iscsi/pdu/serializer.js';
import { Opcode, RESERVED_TAG } from '../../agent/iscsi/pdu/constants.js';
import type { Header, LoginRequest, LoginResponse } from '../../agent/iscsi/pdu/types.js';
import { parseText, serializeText, type KeyValue } from '../../agent/iscsi/text/codec.js';
import { joinViews } from '../../agent/lib/bytes.js';
import { chapResponse } from '../../agent/iscsi/login/chap.js';
import { decodeBinary } from '../../agent/iscsi/text/codec.js';

/** CHAP secrets for chapLogin; mutual ones make the client challenge the target too. */
export interface ClientChap {
  userid: string;
  password: string;
  /** Sends CHAP_I/CHAP_C (mutual CHAP); the target's answer is returned, not checked. */
  mutual?: boolean;
}

export interface ReceivedPdu {
  header: Header;
  data: Buffer;
  raw: RawPdu;
}

export class RawIscsiClient {
  private readonly queue: ReceivedPdu[] = [];
  private waiters: ((p: ReceivedPdu | undefined) => void)[] = [];
  readonly receiver: PduReceiver;
  closed = false;
  readonly closedPromise: Promise<void>;
  headerDigest = false;
  dataDigest = false;
  cmdSN = 1;
  expStatSN = 0;
  itt = 1;
  /** Each client is its own initiator port unless a test sets the same ISID (session reinstatement). */
  isid = '80' + Math.floor(Math.random() * 0xffffffffff).toString(16).padStart(10, '0');

  private constructor(readonly socket: Socket) {
    this.receiver = new PduReceiver({
      maxDataSegmentLength: 1 << 24,
      onPdu: (raw) => {
        const p = { header: decodeHeader(raw.bhs), data: joinViews(raw.data.length ? raw.data : [Buffer.alloc(0)]), raw };
        const w = this.waiters.shift();
        if (w) w(p);
        else this.queue.push(p);
      },
      onError: () => socket.destroy(),
    });
    socket.on('data', (c: Buffer) => this.receiver.push(c));
    this.closedPromise = new Promise((resolve) => socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(undefined);
      resolve();
    }));
    socket.on('error', () => {});
  }

  /** `localAddress` picks the source address (any 127.0.0.0/8 address works on Linux loopback). */
  static async connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawIscsiClient> {
    const s = connect({ port, host, localAddress });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    s.setNoDelay(true); // header and data go out as separate writes: Nagle would hold the second for an ACK
    return new RawIscsiClient(s);
  }

  send(h: Header, data: Buffer[] = [], ahs?: Buffer): void {
    for (const b of framePdu(h, data, { headerDigest: this.headerDigest, dataDigest: this.dataDigest }, undefined, ahs)) this.socket.write(b);
  }

  sendRaw(b: Buffer): void {
    this.socket.write(b);
  }

  /** The next PDU from the target, or undefined if the connection closed / nothing came in time. */
  next(timeoutMs = 3000): Promise<ReceivedPdu | undefined> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== done);
        resolve(undefined);
      }, timeoutMs);
      const done = (p: ReceivedPdu | undefined) => {
        clearTimeout(t);
        resolve(p);
      };
      this.waiters.push(done);
    });
  }

  /** Waits until the target closes the connection (true) or the timeout passes (false). */
  async waitClosed(timeoutMs = 3000): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.closedPromise.then(() => true), new Promise<boolean>((res) => { timer = setTimeout(() => res(false), timeoutMs); })]);
    clearTimeout(timer);
    return r;
  }

  loginPdu(keys: KeyValue[], o: Partial<LoginRequest> = {}): LoginRequest {
    return {
      opcode: Opcode.LOGIN_REQUEST, immediate: true, itt: this.itt, transit: true, cont: false, csg: 1, nsg: 3,
      versionMax: 0, versionMin: 0, isid: this.isid, tsih: 0, cid: 0, cmdSN: this.cmdSN, expStatSN: this.expStatSN, ...o,
    };
  }

  /** One login request/response round trip. */
  async loginStep(keys: KeyValue[], o: Partial<LoginRequest> = {}): Promise<{ h: LoginResponse; keys: Map<string, string> }> {
    this.send(this.loginPdu(keys, o), [serializeText(keys)]);
    const p = await this.next();
    if (!p) throw new Error('connection closed during login');
    if (p.header.opcode !== Opcode.LOGIN_RESPONSE) throw new Error(`expected login response, got opcode ${p.header.opcode}`);
    const h = p.header as LoginResponse;
    this.expStatSN = (h.statSN + 1) >>> 0;
    return { h, keys: new Map(parseText(p.data)) };
  }

  /** A login without authentication straight to full feature phase; returns the final response. */
  async login(initiatorName: string, targetName?: string, extra: KeyValue[] = []): Promise<{ h: LoginResponse; keys: Map<string, string> }> {
    const keys: KeyValue[] = [['InitiatorName', initiatorName], ['SessionType', targetName ? 'Normal' : 'Discovery']];
    if (targetName) keys.push(['TargetName', targetName]);
    const r = await this.loginStep([...keys, ...extra]);
    if (r.h.statusClass === 0 && r.h.transit) {
      this.headerDigest = this.receiver.headerDigest = r.keys.get('HeaderDigest') === 'CRC32C';
      this.dataDigest = this.receiver.dataDigest = r.keys.get('DataDigest') === 'CRC32C';
    }
    return r;
  }

  /**
   * Login with AuthMethod=CHAP (algorithm 5) then straight to full feature phase. Returns the first
   * response that is an error, or the final one.
   */
  async chapLogin(initiatorName: string, targetName: string | undefined, c: ClientChap): Promise<{ h: LoginResponse; keys: Map<string, string> }> {
    const ident: KeyValue[] = [['InitiatorName', initiatorName], ['SessionType', targetName ? 'Normal' : 'Discovery']];
    if (targetName) ident.push(['TargetName', targetName]);
    const sec = { csg: 0, nsg: 1, transit: false };
    let r = await this.loginStep([...ident, ['AuthMethod', 'CHAP']], sec);
    if (r.h.statusClass !== 0) return r;
    r = await this.loginStep([['CHAP_A', '5']], sec);
    if (r.h.statusClass !== 0) return r;
    const id = Number(r.keys.get('CHAP_I'));
    const challenge = decodeBinary(r.keys.get('CHAP_C') ?? '') ?? Buffer.alloc(0);
    const answer: KeyValue[] = [['CHAP_N', c.userid], ['CHAP_R', '0x' + chapResponse(5, id, c.password, challenge).toString('hex')]];
    if (c.mutual) answer.push(['CHAP_I', '7'], ['CHAP_C', '0x' + Buffer.alloc(16, 0x5a).toString('hex')]);
    r = await this.loginStep(answer, { csg: 0, nsg: 1, transit: true });
    if (r.h.statusClass !== 0) return r;
    return this.loginStep([['HeaderDigest', 'None'], ['DataDigest', 'None']], { csg: 1, nsg: 3, transit: true });
  }

  /**
   * Sends a login request's text in `segment`-byte pieces with C=1 (each answered by an empty response),
   * then collects the target's answer, fetching C=1 continuations. `acks` are the responses to the pieces.
   */
  async loginSplit(keys: KeyValue[], o: Partial<LoginRequest> = {}, segment = 8192): Promise<{ h: LoginResponse; segments: number[]; keys: KeyValue[]; acks: LoginResponse[] }> {
    const text = serializeText(keys);
    const acks: LoginResponse[] = [];
    let off = 0;
    for (; text.length - off > segment; off += segment) {
      this.send(this.loginPdu([], { ...o, transit: false, nsg: 0, cont: true }), [text.subarray(off, off + segment)]);
      const p = await this.next();
      if (!p) throw new Error('connection closed during login');
      const h = p.header as LoginResponse;
      this.expStatSN = (h.statSN + 1) >>> 0;
      acks.push(h);
      if (h.statusClass !== 0) return { h, segments: [p.data.length], keys: [], acks };
    }
    this.send(this.loginPdu([], o), [text.subarray(off)]);
    const r = await this.collect(o);
    return { ...r, acks };
  }

  /** Sends a login request and collects a response split with the C bit, fetching the rest with empty requests. */
  async loginCollect(keys: KeyValue[], o: Partial<LoginRequest> = {}): Promise<{ h: LoginResponse; segments: number[]; keys: KeyValue[] }> {
    this.send(this.loginPdu(keys, o), [serializeText(keys)]);
    return this.collect(o);
  }

  private async collect(o: Partial<LoginRequest>): Promise<{ h: LoginResponse; segments: number[]; keys: KeyValue[] }> {
    const segments: number[] = [];
    const parts: Buffer[] = [];
    for (;;) {
      const p = await this.next();
      if (!p) throw new Error('connection closed during login');
      const h = p.header as LoginResponse;
      this.expStatSN = (h.statSN + 1) >>> 0;
      segments.push(p.data.length);
      parts.push(p.data);
      if (!h.cont || h.statusClass !== 0) return { h, segments, keys: parseText(Buffer.concat(parts)) };
      this.send(this.loginPdu([], { ...o, cont: false }), []);
    }
  }

  nextItt(): number {
    return this.itt++;
  }

  nopOut(data: Buffer[] = [], immediate = true): number {
    const itt = this.nextItt();
    this.send({ opcode: Opcode.NOP_OUT, immediate, itt, lun: 0, ttt: RESERVED_TAG, cmdSN: this.cmdSN, expStatSN: this.expStatSN }, data);
    if (!immediate) this.cmdSN++;
    return itt;
  }

  close(): void {
    this.socket.destroy();
  }
}
