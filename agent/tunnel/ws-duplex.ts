// A bound tunnel WebSocket as a Node Duplex of raw iSCSI bytes, so the fabric serves it like a TCP socket.
// Written with backpressure both ways: reading pauses the WebSocket's socket while the fabric has not
// consumed what it got; a write completes when the socket has taken its bytes, as on a TCP socket.
import { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { CloseCode, MAX_DATA_MESSAGE } from '../../shared/tunnel-protocol.js';

/** Chunks below this size (PDU headers, small responses) are coalesced into one message; larger ones go by reference. */
const SMALL = 16 << 10;
/** Largest coalesced message of small chunks. */
const GROUP = 64 << 10;

export interface DuplexCounters {
  rx: number;
  tx: number;
}

export class WebSocketDuplex extends Duplex {
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
    this.sendAll([chunk], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    // One message per PDU header would cost a frame and a socket write each: coalesce the small
    // chunks (a copy of a few bytes), send the large payloads as they are (no copy).
    const messages: Buffer[] = [];
    let group: Buffer[] = [];
    let size = 0;
    const flush = () => {
      if (group.length) messages.push(group.length === 1 ? Buffer.from(group[0]!) : Buffer.concat(group, size));
      group = [];
      size = 0;
    };
    for (const { chunk } of chunks) {
      if (chunk.length >= SMALL) {
        flush();
        messages.push(chunk);
        continue;
      }
      if (size + chunk.length > GROUP) flush();
      group.push(chunk);
      size += chunk.length;
    }
    flush();
    this.sendAll(messages, cb);
  }

  /**
   * Sends the messages and calls back once the socket is done with every one of them, as a TCP socket
   * would: the fabric returns pooled read buffers to their pool in that callback, so it must not run
   * while a buffer is still queued. Waiting for it is also the backpressure towards the fabric.
   */
  private sendAll(messages: Buffer[], cb: (err?: Error | null) => void): void {
    if (this.ws.readyState !== this.ws.OPEN) return cb(new Error('tunnel connection closed'));
    let pending = messages.length;
    let failed: Error | undefined;
    if (pending === 0) return cb();
    const big = messages.find((m) => m.length > MAX_DATA_MESSAGE);
    if (big) return cb(new Error(`tunnel message of ${big.length} bytes exceeds ${MAX_DATA_MESSAGE}`));
    for (const m of messages) {
      this.counters.tx += m.length;
      this.ws.send(m, { binary: true }, (err) => {
        failed ??= err ?? undefined;
        if (--pending === 0) cb(failed);
      });
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.close(err ? CloseCode.PROTOCOL : CloseCode.NORMAL);
    else if (this.ws.readyState === this.ws.CONNECTING) this.ws.terminate();
    cb(err);
  }
}
