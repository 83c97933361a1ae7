// Node entry of the gateway: `outpost gateway --port N --data DIR [--host H]` — @hono/node-server,
// ws on /v1/connect, and a SQLite file in DIR. startGateway() is the same thing for tests and the demo.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { Command } from 'commander';
import { pino, type Logger } from 'pino';
import { createApp } from '../app.js';
import { ControlService } from '../control.js';
import { Fleet } from '../fleet.js';
import { secretKeyProblem } from '../crypto.js';
import { SqlStore } from '../sql-store.js';
import { LIVE_PATH, watchStore } from '../ui/live.js';
import { NodeHub } from './hub.js';
import { NodeLiveSockets } from './live.js';
import { scryptKdf } from './scrypt.js';
import { sha256HexSync } from './token-hash.js';
import { openSqlite } from './sqlite.js';

export interface GatewayOptions {
  readonly dataDir: string;
  readonly port?: number; // 0 (default): ephemeral
  readonly host?: string; // default 127.0.0.1
  readonly adminToken: string;
  readonly secretKey: string;
  readonly logger?: Logger;
}

export interface RunningGateway {
  readonly url: string; // http://host:port
  readonly port: number;
  close(): Promise<void>;
}

export const DB_FILE = 'gateway.sqlite';
/** Accept queue of the listening socket (the kernel caps it at net.core.somaxconn). */
const LISTEN_BACKLOG = 4096;
/** How long a stop waits for agents to answer the close handshake before cutting their sockets. */
export const CLOSE_GRACE_MS = 500;

export async function startGateway(opts: GatewayOptions): Promise<RunningGateway> {
  const logger = opts.logger ?? pino({ name: 'outpost-gateway' }, pino.destination(2));
  if (opts.adminToken.length < 16) throw new Error('the admin token must be at least 16 characters');
  // A bad key is refused here, before listening: otherwise every write would answer 500 later.
  const keyProblem = secretKeyProblem(opts.secretKey);
  if (keyProblem) throw new Error(keyProblem);
  await mkdir(opts.dataDir, { recursive: true, mode: 0o700 });
  // The database holds sealed secrets and token hashes: owner-only, like the key file. SQLite gives
  // its -wal and -shm files the database file's mode.
  const dbFile = join(opts.dataDir, DB_FILE);
  await writeFile(dbFile, '', { flag: 'a', mode: 0o600 });
  await chmod(dbFile, 0o600);
  const db = openSqlite(dbFile);
  const hub = new NodeHub(logger);
  // the dashboard's push channel: told of every store write (gateway/ui/live.ts)
  const live = new NodeLiveSockets(opts.adminToken, logger);
  hub.upgrades.set(LIVE_PATH, (req, socket, head) => live.upgrade(req, socket, head));
  const store = watchStore(new SqlStore(db.driver), live.feed);
  const deps = { store, hub, secretKey: opts.secretKey, kdf: scryptKdf, hashToken: sha256HexSync, adminToken: opts.adminToken, logger };
  const app = createApp(deps);
  const control = new ControlService(deps);
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  hub.attach(server, control);
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // a fleet reconnecting after a restart dials within a second: Node's default accept queue (511)
    // overflowed, and each dropped handshake cost its agent a SYN-retransmit backoff of seconds
    server.listen({ port: opts.port ?? 0, host, backlog: LISTEN_BACKLOG }, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info({ url, data: opts.dataDir }, 'gateway listening');
  let closed: Promise<void> | undefined;
  return {
    url,
    port,
    close: () =>
      (closed ??= (async () => {
        // stop listening before closing the agents' sockets: otherwise they reconnect to this closing
        // gateway, get a snapshot (which resets their backoff) and are cut again, in a loop
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        await Promise.all([live.close(CLOSE_GRACE_MS), hub.shutdown(CLOSE_GRACE_MS)]);
        // what is left (an upgrade refused while closing whose peer never hangs up) must not hold the stop
        for (const s of sockets) s.destroy();
        await stopped;
        await Fleet.for(deps).flushRecords(); // the last acks and statuses, queued for this tick
        db.close();
      })()),
  };
}

/** Reads OUTPOST_SECRET_KEY, or the key file in DIR, generating it (mode 0600) on first run. */
async function secretKeyFor(dataDir: string, logger: Logger): Promise<string> {
  const fromEnv = process.env.OUTPOST_SECRET_KEY;
  if (fromEnv !== undefined) {
    const problem = secretKeyProblem(fromEnv);
    if (problem) throw new Error(problem);
    return fromEnv;
  }
  const file = join(dataDir, 'secret.key');
  try {
    const key = (await readFile(file, 'utf8')).trim();
    const problem = secretKeyProblem(key);
    if (problem) throw new Error(`${file}: ${problem.replace('OUTPOST_SECRET_KEY', 'the key')}`);
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const key = randomBytes(32).toString('base64url');
  await writeFile(file, key + '\n', { mode: 0o600, flag: 'wx' });
  logger.warn({ file }, 'OUTPOST_SECRET_KEY not set: generated a secret key into the data directory (keep it; secrets at rest are sealed with it). In production set OUTPOST_SECRET_KEY and keep the key outside the data directory, so a copy of the data alone does not open the secrets');
  return key;
}

/** `outpost gateway …`; argv is the arguments after the program name (a leading "gateway" is skipped). */
export async function main(argv: string[]): Promise<RunningGateway> {
  const args = argv[0] === 'gateway' ? argv.slice(1) : argv;
  const cmd = new Command('outpost gateway')
    .description('run the Outpost policy gateway (admin REST API + agent WebSocket endpoint)')
    .requiredOption('--data <dir>', 'data directory (SQLite file, generated key)')
    .option('--port <n>', 'TCP port', '8080')
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent (or OUTPOST_LOG_LEVEL)', process.env.OUTPOST_LOG_LEVEL ?? 'info')
    .exitOverride();
  cmd.parse(args, { from: 'user' });
  const o = cmd.opts<{ data: string; port: string; host: string; logLevel: string }>();
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(o.logLevel)) throw new Error(`unknown log level "${o.logLevel}" (one of fatal, error, warn, info, debug, trace, silent)`);
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`invalid --port ${o.port}`);
  const logger = pino({ name: 'outpost-gateway', level: o.logLevel }, pino.destination(2));
  const adminToken = process.env.OUTPOST_ADMIN_TOKEN;
  if (!adminToken) throw new Error('OUTPOST_ADMIN_TOKEN must be set (the Bearer token of the admin API, 16+ characters)');
  await mkdir(o.data, { recursive: true, mode: 0o700 });
  const secretKey = await secretKeyFor(o.data, logger);
  const gw = await startGateway({ dataDir: o.data, port, host: o.host, adminToken, secretKey, logger });
  const stop = (): void => void gw.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return gw;
}
