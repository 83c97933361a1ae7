// Client side of the admin API: the `outpost` shell reaching a running agent.
import { createConnection, type Socket } from 'node:net';
import type { JobSnapshot } from '../jobs.js';
import type { AdminRequest, AdminResponse } from './protocol.js';

export class AdminClient {
  private nextId = 1;
  private buf = '';
  private readonly pending = new Map<number, { resolve: (r: AdminResponse) => void; reject: (e: Error) => void; frame?: (s: JobSnapshot) => void }>();

  private constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const res = JSON.parse(this.buf.slice(0, nl)) as AdminResponse;
        this.buf = this.buf.slice(nl + 1);
        const p = this.pending.get(res.id);
        // a watch gets many frames on its id; only the last (or an error) settles it
        if (p?.frame && res.ok && res.progress && !res.final) {
          p.frame(res.progress);
          continue;
        }
        p?.resolve(res);
        this.pending.delete(res.id);
      }
    });
    const fail = (err: Error) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('the agent closed the admin connection')));
  }

  /** Connects to a running agent; undefined when none answers at `path`. */
  static async connect(path: string): Promise<AdminClient | undefined> {
    return new Promise((resolve) => {
      const sock = createConnection(path);
      sock.once('connect', () => resolve(new AdminClient(sock)));
      sock.once('error', () => resolve(undefined));
    });
  }

  request(req: Omit<AdminRequest, 'id'>): Promise<AdminResponse> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.sock.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }

  /**
   * Follows a job: `frame` for each progress frame; `done` resolves with the last snapshot when the job ends,
   * or undefined when detached. detach() ends the view only: the job goes on in the agent.
   */
  watch(job: number, frame: (s: JobSnapshot) => void): { done: Promise<JobSnapshot | undefined>; detach(): void } {
    const id = this.nextId++;
    let settle!: (s: JobSnapshot | undefined) => void;
    const done = new Promise<JobSnapshot | undefined>((resolve, reject) => {
      settle = resolve;
      this.pending.set(id, {
        resolve: (r) => (r.ok ? resolve(r.progress) : reject(new Error(r.message ?? 'watch failed'))),
        reject,
        frame,
      });
    });
    this.sock.write(JSON.stringify({ op: 'watch', id, job }) + '\n');
    return {
      done,
      detach: () => {
        if (!this.pending.delete(id)) return;
        settle(undefined);
        void this.request({ op: 'unwatch', watch: id }).catch(() => undefined);
      },
    };
  }

  close(): void {
    this.sock.end();
  }
}
