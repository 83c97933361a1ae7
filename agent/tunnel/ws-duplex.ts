// A bound tunnel WebSocket as a Node Duplex of raw iSCSI bytes, so the fabric serves it like a TCP socket.
// Written with backpressure both ways: reading pauses the WebSocket's socket while the fabric has not
// consumed what it got; writing waits for the send buffer to fall below the high-water mark.
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { CloseCode, MAX_DATA_MESSAGE } from '../../shared/tunnel-protocol.js';

/**
 * Writes the fabric corks within one event-loop turn are sent as messages of up to this size: one
 * 256 KiB Data-In PDU with its header, or many small PDUs. Larger messages would delay the relay,
 * which forwards a message only once it has all of it.
 */
const BATCH = 256 << 10;

export interface DuplexCounters {
  rx: number;
  tx: number;
}

export class WebSocketDuplex extends Duplex {
  private waiting?: () => void;

  constructor(private readonly ws: WebSocket, private readonly counters: DuplexCounters, private readonly highWater = 1 << 20) {
    super({ allowHalfOpen: false, readableHighWaterMark: highWater, writableHighWaterMark: highWater });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) return this.destroy(new Error('text message on a bound tunnel connection'));
      counters.rx += data.length;
      if (!this.push(data)) ws.pause();
    });
    ws.on('close', () => {
      this.push(null);
      this.destroy();
    });
    ws.on('error', (e) => this.destroy(e));
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.sendBatch([chunk], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    // One message per PDU would cost a frame header and a socket write each: coalesce, bounded.
    const batches: Buffer[][] = [[]];
    let size = 0;
    for (const { chunk } of chunks) {
      if (size + chunk.length > BATCH && size > 0) {
        batches.push([]);
        size = 0;
      }
      batches[batches.length - 1]!.push(chunk);
      size += chunk.length;
    }
    const send = (i: number): void => {
      if (i === batches.length) return cb();
      this.sendBatch(batches[i]!, (err) => (err ? cb(err) : send(i + 1)));
    };
    send(0);
  }

  private sendBatch(parts: Buffer[], cb: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return cb(new Error('tunnel connection closed'));
    const msg = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (msg.length > MAX_DATA_MESSAGE) return cb(new Error(`tunnel message of ${msg.length} bytes`));
    this.counters.tx += msg.length;
    let done = false;
    this.ws.send(msg, { binary: true }, (err) => {
      if (err && !done) {
        done = true;
        return cb(err);
      }
      const w = this.waiting;
      if (w && this.ws.bufferedAmount < this.highWater) {
        this.waiting = undefined;
        w();
      }
    });
    if (done) return;
    if (this.ws.bufferedAmount < this.highWater) {
      done = true;
      return cb();
    }
    this.waiting = () => {
      if (done) return;
      done = true;
      cb();
    };
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(err ? CloseCode.PROTOCOL : CloseCode.NORMAL);
    else if (this.ws.readyState === this.ws.CONNECTING) this.ws.terminate();
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
    cb(err);
  }
}
