// The import's view of the legacy LUN: sessions of agent/initiator/ that reconnect after the source goes away,
// with a short memory of the last failure so that reads do not each wait out a dead host.
import { BackstoreError, BackstoreErrorCode } from '../backstores/backstore.js';
import type { Logger } from '../lib/log.js';
import { InitiatorError } from '../initiator/errors.js';
import { InitiatorSession } from '../initiator/session.js';
import { readCapacity, read16, unitSerial, type Capacity } from '../initiator/scsi.js';
import { formatIscsiUrl, type IscsiUrl } from '../initiator/url.js';

/** Largest READ (16) sent: a quarter of a region, so that a region's reads are in flight together. */
export const READ_BYTES = 256 * 1024;

export class SourceLink {
  private session: InitiatorSession | undefined;
  private opening: Promise<InitiatorSession> | undefined;
  private lastFailure: { at: number; err: InitiatorError } | undefined;
  private closed = false;
  lastError: string | null = null;

  constructor(readonly url: IscsiUrl, private readonly secret: string | undefined, private readonly log: Logger,
    private readonly o: { queueDepth: number; retryMs: number; name: string }) {}

  get display(): string {
    return formatIscsiUrl(this.url);
  }

  get connected(): boolean {
    return this.session !== undefined && !this.session.closed;
  }

  /** A logged-in session; within retryMs of a failed attempt, that failure again (no new connect). */
  async get(): Promise<InitiatorSession> {
    if (this.closed) throw new InitiatorError('CLOSED', `import source ${this.display}: disconnected`);
    if (this.session && !this.session.closed) return this.session;
    if (this.opening) return this.opening;
    const f = this.lastFailure;
    if (f && Date.now() - f.at < this.o.retryMs) throw f.err;
    this.opening = InitiatorSession.open({
      host: this.url.host, port: this.url.port, targetName: this.url.iqn, queueDepth: this.o.queueDepth,
      initiatorName: `iqn.2024-01.dev.outpost:import.${this.o.name.toLowerCase().replace(/[^a-z0-9.-]/g, '-')}`,
      chap: this.url.user ? { user: this.url.user, secret: this.secret ?? '' } : undefined,
      connectTimeoutMs: 5000, commandTimeoutMs: 20_000,
    }).then((s) => {
      if (this.closed) { s.destroy(); throw new InitiatorError('CLOSED', `import source ${this.display}: disconnected`); }
      if (this.lastFailure) this.log.info({ source: this.display }, 'import source reachable again');
      this.session = s;
      this.lastFailure = undefined;
      this.lastError = null;
      s.onClose((e) => {
        this.lastError = e.message;
        this.log.warn({ source: this.display, err: e.message }, 'import source connection lost');
      });
      return s;
    }, (e: unknown) => {
      const err = e instanceof InitiatorError ? e : new InitiatorError('CONNECT_FAILED', String(e));
      this.lastFailure = { at: Date.now(), err };
      this.lastError = err.message;
      throw err;
    }).finally(() => { this.opening = undefined; });
    return this.opening;
  }

  async capacity(): Promise<Capacity> {
    return readCapacity(await this.get(), this.url.lun);
  }

  async serial(): Promise<string | undefined> {
    return unitSerial(await this.get(), this.url.lun);
  }

  /** Bytes [offset, offset+length) of the source (block aligned), as READ (16)s of at most READ_BYTES in flight together. */
  async read(offset: number, length: number, blockSize: number): Promise<Buffer> {
    const s = await this.get();
    // Every READ lands in its slice of one buffer: a 4 MiB chunk is not copied again to be joined.
    const out = Buffer.allocUnsafe(length);
    const parts: Promise<Buffer>[] = [];
    for (let at = offset; at < offset + length; at += READ_BYTES) {
      const n = Math.min(READ_BYTES, offset + length - at);
      parts.push(read16(s, this.url.lun, at / blockSize, n / blockSize, blockSize, out.subarray(at - offset, at - offset + n)));
    }
    await Promise.all(parts);
    return out;
  }

  /** Drops the connection at once (commands in flight fail with CLOSED) and refuses further use. */
  abort(): void {
    this.closed = true;
    this.session?.destroy();
    this.session = undefined;
  }

  /** Logs out (when connected) and refuses further use. */
  async close(): Promise<void> {
    this.closed = true;
    const s = this.session;
    this.session = undefined;
    await this.opening?.catch(() => undefined);
    if (s && !s.closed) await s.logout().catch(() => s.destroy());
  }
}

/** Refuses a source that is not this LUN's: unreachable, refusing login, another size or block size, or our own. */
export async function probe(src: SourceLink, o: { size: number; blockSize: number; served: readonly string[] }): Promise<void> {
  try {
    const cap = await src.capacity();
    if (cap.blockSize !== o.blockSize) {
      throw new BackstoreError(BackstoreErrorCode.IO, `import: source ${src.display} has ${cap.blockSize}-byte blocks, this LUN ${o.blockSize}-byte ones; set block_size=${cap.blockSize} or import another LUN`);
    }
    if (cap.bytes !== o.size) {
      throw new BackstoreError(BackstoreErrorCode.IO, `import: source ${src.display} holds ${cap.bytes} bytes (${cap.blocks} blocks of ${cap.blockSize}); SIZE must equal it: give ${cap.bytes}`);
    }
    const serial = await src.serial();
    if (serial && o.served.some((w) => w.toLowerCase() === serial.toLowerCase())) {
      throw new BackstoreError(BackstoreErrorCode.IO, `import: source ${src.display} is a LUN this agent serves (unit serial ${serial}); an agent cannot import a LUN while serving it`);
    }
  } catch (e) {
    if (e instanceof InitiatorError) throw new BackstoreError(e.transient ? BackstoreErrorCode.NOT_READY : BackstoreErrorCode.IO, `import source unusable: ${e.message}`);
    throw e;
  }
}
