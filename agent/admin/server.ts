// The agent's local admin API: the shell engine runs in the agent on its live model; clients send
// exec/complete requests as JSON lines. Only the owner can connect (socket mode 0600 in the state dir).
import { chmod, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { jobs as globalJobs, type Jobs } from '../jobs.js';
import type { Logger } from '../lib/log.js';
import type { ShellEngine } from '../shell/engine.js';
import { MAX_LINE, type AdminRequest, type AdminResponse } from './protocol.js';
import { watchJob } from './watch.js';

async function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface AdminServer {
  readonly path: string;
  close(): Promise<void>;
}

export async function startAdminServer(opts: { path: string; engine: ShellEngine; configPath: string; log: Logger; jobs?: Jobs }): Promise<AdminServer> {
  const { path, engine, log } = opts;
  const registry = opts.jobs ?? globalJobs;
  if (await socketAlive(path)) throw new Error(`another agent is already running (admin socket ${path} answers)`);
  await unlink(path).catch(() => {});
  // Requests are served one at a time: each command sees the result of the previous one.
  let chain: Promise<unknown> = Promise.resolve();
  const sockets = new Set<Socket>();
  const handle = async (req: AdminRequest): Promise<AdminResponse> => {
    if (req.op === 'ping') return { id: req.id, ok: true, configPath: opts.configPath };
    if (typeof req.line !== 'string') return { id: req.id, ok: false, message: 'line must be a string' };
    if (req.op === 'complete') return { id: req.id, ok: true, candidates: engine.complete({ cwd: req.cwd, line: req.line }) };
    if (req.op === 'exec') {
      const r = await engine.exec({ cwd: req.cwd, prevCwd: req.prevCwd, line: req.line, width: req.width, interactive: req.interactive });
      if (r.error) log.info({ line: req.line.replace(/password=\S+/g, 'password=…') }, 'admin command failed');
      return { id: req.id, ok: true, ...r };
    }
    return { id: req.id, ok: false, message: `unknown op ${String(req.op)}` };
  };
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    // Watches answer beside the command chain: a client follows a job while other commands run.
    const watches = new Map<number, () => void>();
    const send = (r: AdminResponse) => {
      if (sock.writable) sock.write(JSON.stringify(r) + '\n');
      if (r.final || !r.ok) {
        watches.get(r.id)?.();
        watches.delete(r.id);
      }
    };
    sock.on('close', () => {
      sockets.delete(sock);
      for (const stop of watches.values()) stop();
      watches.clear();
    });
    sock.on('error', () => sock.destroy());
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_LINE) {
        sock.end(JSON.stringify({ id: 0, ok: false, message: 'request too large' }) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let req: AdminRequest;
        try {
          req = JSON.parse(line) as AdminRequest;
          if (typeof req !== 'object' || req === null) throw new Error('not an object');
        } catch {
          sock.write(JSON.stringify({ id: 0, ok: false, message: 'malformed request' }) + '\n');
          continue;
        }
        if (req.op === 'watch') {
          if (watches.has(req.id)) continue;
          watches.set(req.id, () => {}); // send() drops it again when the first frame is already the last
          const stop = watchJob(registry, req.id, req.job, send);
          if (watches.has(req.id)) watches.set(req.id, stop);
          continue;
        }
        if (req.op === 'unwatch') {
          watches.get(Number(req.watch))?.();
          watches.delete(Number(req.watch));
          send({ id: req.id, ok: true });
          continue;
        }
        chain = chain.then(() => handle(req)).then(
          (res) => sock.writable && sock.write(JSON.stringify(res) + '\n'),
          (err: Error) => sock.writable && sock.write(JSON.stringify({ id: req.id, ok: false, message: err.message }) + '\n'),
        );
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  await chmod(path, 0o600);
  log.info({ path }, 'admin API listening');
  return {
    path,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await unlink(path).catch(() => {});
    },
  };
}
