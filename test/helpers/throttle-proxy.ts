// Test helper: a TCP proxy on 127.0.0.1 that caps the bytes sent upstream (all connections together) at a
// rate, so an upload to a real s3rver takes long enough for progress to be seen. Downstream is not limited.
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface ThrottleProxy {
  readonly endpoint: string;
  /** Bytes per second upstream; 0 lifts the cap. */
  rate: number;
  close(): Promise<void>;
}

export async function startThrottleProxy(upstreamPort: number, rate: number): Promise<ThrottleProxy> {
  const sockets = new Set<Socket>();
  // One budget for every connection: the uploads run in parallel and the cap is on their sum.
  let nextFree = Date.now();
  const delayFor = (bytes: number, r: number): number => {
    if (r <= 0) return 0;
    const now = Date.now();
    nextFree = Math.max(nextFree, now) + (bytes / r) * 1000;
    return Math.max(0, nextFree - now);
  };
  const proxy: ThrottleProxy = { endpoint: '', rate, close: async () => {} };
  const server: Server = createServer((down) => {
    const up = createConnection({ host: '127.0.0.1', port: upstreamPort });
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => { down.destroy(); up.destroy(); });
    }
    up.pipe(down);
    down.on('data', (chunk: Buffer) => {
      const wait = delayFor(chunk.length, proxy.rate);
      if (wait < 5) { up.write(chunk); return; }
      down.pause();
      setTimeout(() => { up.write(chunk); down.resume(); }, wait);
    });
    down.on('end', () => up.end());
    up.on('end', () => down.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return Object.assign(proxy, {
    endpoint: `http://127.0.0.1:${port}`,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
