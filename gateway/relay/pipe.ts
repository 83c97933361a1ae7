// Splices one initiator TCP socket and one bound tunnel WebSocket, with backpressure both ways:
// the relay holds at most about `highWater` bytes per direction per connection.
import type { Socket } from 'node:net';
import type { WebSocket } from 'ws';
import { CloseCode } from '../../shared/tunnel-protocol.js';

export interface PipeStats {
  toAgent: number;
  toInitiator: number;
}

export function splice(tcp: Socket, ws: WebSocket, first: Uint8Array, highWater: number, onEnd: (why: string, stats: PipeStats) => void): void {
  const stats: PipeStats = { toAgent: 0, toInitiator: 0 };
  let ended = false;
  const end = (why: string) => {
    if (ended) return;
    ended = true;
    tcp.destroy();
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(CloseCode.NORMAL, why.slice(0, 100));
    else ws.terminate();
    onEnd(why, stats);
  };

  // initiator → agent: pause the socket while the WebSocket's send buffer is above the bound.
  const toAgent = (chunk: Uint8Array) => {
    stats.toAgent += chunk.length;
    ws.send(chunk, { binary: true }, (err) => {
      if (err) return end(`tunnel send failed: ${err.message}`);
      if (tcp.isPaused() && ws.bufferedAmount < highWater) tcp.resume();
    });
    if (ws.bufferedAmount >= highWater) tcp.pause();
  };
  if (first.length) toAgent(first);
  tcp.on('data', toAgent);

  // agent → initiator: pause the WebSocket's socket while the TCP socket's write buffer is full.
  ws.on('message', (data, isBinary) => {
    if (!isBinary) return end('text message on a bound tunnel connection');
    const buf = data as Buffer;
    stats.toInitiator += buf.length;
    tcp.write(buf);
    // The socket's own high-water mark (16 KiB) is below one Data-In burst; bound by ours instead.
    if (tcp.writableLength >= highWater) ws.pause();
  });
  tcp.on('drain', () => {
    if (!ended) ws.resume();
  });

  tcp.on('end', () => end('initiator closed'));
  tcp.on('close', () => end('initiator closed'));
  tcp.on('error', (e) => end(`initiator error: ${e.message}`));
  ws.on('close', () => end('tunnel closed'));
  ws.on('error', (e) => end(`tunnel error: ${e.message}`));
}
