// RFC 7143 §4.2.2 (CmdSN ordering and the command window), §6.3 (sessions, TSIH), §6.3.5 (reinstatement).
import { serialAdd, serialLt, serialLte } from '../lib/serial.js';
import type { LunView, Nexus, TargetCore } from '../scsi/port.js';
import type { PortalAddress, TpgView } from './target-registry.js';
import type { SessionParams } from './text/negotiate.js';

export type SessionType = 'Normal' | 'Discovery';

const sameName = (a: string, b: string) => a.length === b.length && a.toLowerCase() === b.toLowerCase();

/** What a session needs from each of its connections. */
export interface SessionConnection {
  readonly cid: number;
  readonly local: PortalAddress;
  readonly remote: string;
  /** Ends the connection (tasks on it are dropped). */
  destroy(reason: string): void;
  /** Number of tasks on this connection still waiting for a response. */
  readonly activeTasks: number;
  /** Aborts tasks still held by the fabric (not yet given to the core) that match; returns how many. */
  abortHeld(match: (t: { readonly itt: number; readonly lun: number }) => boolean): number;
}

/** A command waiting for its turn: delivered to the core strictly in CmdSN order across all connections. */
export interface QueuedTask {
  readonly aborted: boolean;
  readonly dataComplete: boolean;
  start(): void;
}

export interface SessionInit {
  tsih: number;
  type: SessionType;
  initiatorName: string;
  isid: string;
  targetName: string;
  tpg?: TpgView;
  nexus?: Nexus;
  luns?: LunView;
  params: SessionParams;
  cmdSN: number;
  cmdsnDepth: number;
}

export class Session {
  readonly tsih: number;
  readonly type: SessionType;
  readonly initiatorName: string;
  readonly isid: string;
  readonly targetName: string;
  readonly tpg?: TpgView;
  readonly nexus?: Nexus;
  readonly luns?: LunView;
  readonly params: SessionParams;
  readonly connections = new Map<number, SessionConnection>();
  expCmdSN: number;
  /** Non-immediate commands received and not yet answered; they hold the window shut. */
  private outstanding = 0;
  private readonly depth: number;
  private readonly waiting = new Map<number, () => void>();
  private readonly execQueue: QueuedTask[] = [];
  private pumping = false;
  ended = false;
  /** Data-Out bytes this session's tasks have solicited or may buffer (bounded by the server's cap). */
  dataOutReserved = 0;

  constructor(init: SessionInit, private readonly onEnd: (s: Session) => void) {
    this.tsih = init.tsih;
    this.type = init.type;
    this.initiatorName = init.initiatorName;
    this.isid = init.isid;
    this.targetName = init.targetName;
    this.tpg = init.tpg;
    this.nexus = init.nexus;
    this.luns = init.luns;
    this.params = init.params;
    this.expCmdSN = init.cmdSN >>> 0;
    this.depth = Math.max(1, init.cmdsnDepth);
  }

  /** MaxCmdSN = ExpCmdSN + depth - 1 - outstanding: it only moves forward, and opens as commands complete. */
  get maxCmdSN(): number {
    return serialAdd(this.expCmdSN, this.depth - 1 - this.outstanding);
  }

  /**
   * Admits a non-immediate PDU numbered `cmdSN`: runs `deliver` now if it is next, queues it if it is
   * ahead within the window (multi-connection sessions), returns false (drop) when outside the window.
   * `counts` marks a command that holds a window slot until release().
   */
  admit(cmdSN: number, deliver: () => void, counts: boolean): boolean {
    cmdSN >>>= 0;
    if (cmdSN === this.expCmdSN) {
      this.expCmdSN = serialAdd(this.expCmdSN, 1);
      if (counts) this.outstanding++;
      deliver();
      this.drain();
      return true;
    }
    if (serialLt(this.expCmdSN, cmdSN) && serialLte(cmdSN, this.maxCmdSN) && !this.waiting.has(cmdSN)) {
      this.waiting.set(cmdSN, () => {
        if (counts) this.outstanding++;
        deliver();
      });
      return true;
    }
    return false;
  }

  /** A counted command got its response (or was aborted): its window slot opens. */
  release(): void {
    if (this.outstanding > 0) this.outstanding--;
  }

  /** Appends a sequenced command (called in CmdSN order from admit's deliver). */
  enqueue(t: QueuedTask): void {
    this.execQueue.push(t);
  }

  /** Starts every queued command whose Data-Out is complete, stopping at the first that still waits. */
  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.execQueue.length > 0) {
        const head = this.execQueue[0]!;
        if (!head.aborted && !head.dataComplete) break;
        this.execQueue.shift();
        if (!head.aborted) head.start();
      }
    } finally {
      this.pumping = false;
    }
  }

  get inFlight(): number {
    return this.outstanding;
  }

  private drain(): void {
    for (let fn = this.waiting.get(this.expCmdSN); fn; fn = this.waiting.get(this.expCmdSN)) {
      this.waiting.delete(this.expCmdSN);
      this.expCmdSN = serialAdd(this.expCmdSN, 1);
      fn();
    }
  }

  removeConnection(conn: SessionConnection): void {
    if (this.connections.get(conn.cid) === conn) this.connections.delete(conn.cid);
    // ERL 0: a session lives exactly as long as its last connection.
    if (this.connections.size === 0) this.end('last connection closed');
  }

  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const c of [...this.connections.values()]) c.destroy(reason);
    this.connections.clear();
    this.waiting.clear();
    this.execQueue.length = 0;
    this.onEnd(this);
  }
}

/** All sessions of one server: TSIH allocation and lookup by session identity (RFC 7143 §4.4.1). */
export class SessionTable {
  private readonly byTsih = new Map<number, Session>();
  private next = 1;

  constructor(private readonly core: TargetCore) {}

  allocateTsih(): number {
    for (let i = 0; i < 0xffff; i++) {
      const t = this.next;
      this.next = this.next >= 0xffff ? 1 : this.next + 1;
      if (!this.byTsih.has(t)) return t;
    }
    throw new Error('no free TSIH');
  }

  create(init: Omit<SessionInit, 'tsih'>): Session {
    const s = new Session({ ...init, tsih: this.allocateTsih() }, (ended) => this.ended(ended));
    this.byTsih.set(s.tsih, s);
    if (s.nexus && s.luns) this.core.nexusCreated(s.nexus, s.luns);
    return s;
  }

  get(tsih: number): Session | undefined {
    return this.byTsih.get(tsih);
  }

  /** The session with the same initiator port and target port (the session identity), if any. */
  find(initiatorName: string, isid: string, targetName: string, tpgt: number | undefined): Session | undefined {
    for (const s of this.byTsih.values()) {
      // iSCSI names are case-insensitive (RFC 3722): the same node in another spelling is the same port.
      if (sameName(s.initiatorName, initiatorName) && s.isid === isid && sameName(s.targetName, targetName) && s.tpg?.tag === tpgt && !s.ended) return s;
    }
    return undefined;
  }

  all(): Session[] {
    return [...this.byTsih.values()];
  }

  private ended(s: Session): void {
    if (this.byTsih.get(s.tsih) === s) this.byTsih.delete(s.tsih);
    if (s.nexus) this.core.nexusLost(s.nexus);
  }
}
