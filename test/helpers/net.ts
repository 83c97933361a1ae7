// Loopback helpers for integration tests: tests bind only to 127.0.0.0/8 and ephemeral ports.
import { createServer } from 'node:net';

/** Returns a TCP port that was free on `host` a moment ago (bind to 0, read, close). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
