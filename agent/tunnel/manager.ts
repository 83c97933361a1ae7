// Reconciles the configured tunnels (TPG key outpost_tunnels) into running Tunnel objects: a new or
// changed tunnel is dialed, a removed one (or one of a disabled TPG) is stopped with its connections.
import type { Logger } from '../lib/log.js';
import { iscsiTargets, type RootConfig } from '../config/schema.js';
import { Tunnel, type StreamHost, type TunnelOptions, type TunnelStatus } from './tunnel.js';

interface Entry {
  tunnel: Tunnel;
  sig: string;
  target: string;
  tag: number;
}

const keyOf = (target: string, tag: number, url: string) => `${target.toLowerCase()}|${tag}|${url}`;

export class TunnelManager {
  private readonly running = new Map<string, Entry>();

  constructor(private readonly host: StreamHost, private readonly log: Logger, private readonly opts: TunnelOptions = {}) {}

  /** Makes the running tunnels match `root`. A tunnel that cannot start is logged and left out. */
  reconcile(root: RootConfig): void {
    const wanted = new Map<string, { target: string; tag: number; spec: Tunnel['spec'] }>();
    for (const t of iscsiTargets(root)) for (const tpg of t.tpgs) {
      if (!tpg.enable) continue;
      for (const spec of tpg.outpost_tunnels ?? []) wanted.set(keyOf(t.wwn, tpg.tag, spec.url), { target: t.wwn, tag: tpg.tag, spec });
    }
    for (const [k, e] of this.running) {
      const w = wanted.get(k);
      if (w && JSON.stringify(w.spec) === e.sig) continue;
      e.tunnel.stop();
      this.running.delete(k);
      this.log.info({ target: e.target, tpg: e.tag, url: e.tunnel.spec.url }, 'tunnel stopped');
    }
    for (const [k, w] of wanted) {
      if (this.running.has(k)) continue;
      try {
        const spec = { url: w.spec.url, advertise: w.spec.advertise, token_file: w.spec.token_file, source: w.spec.source, ca_file: w.spec.ca_file };
        const tunnel = new Tunnel(spec, [w.target], this.host, this.log, this.opts);
        tunnel.start();
        this.running.set(k, { tunnel, sig: JSON.stringify(w.spec), target: w.target, tag: w.tag });
        this.log.info({ target: w.target, tpg: w.tag, url: spec.url, advertise: spec.advertise }, 'tunnel started');
      } catch (e) {
        this.log.error({ target: w.target, tpg: w.tag, url: w.spec.url, err: (e as Error).message }, 'tunnel not started');
      }
    }
  }

  /** Status of the tunnels of one TPG, in configuration order of their URLs. */
  status(target: string, tag: number): TunnelStatus[] {
    const out: TunnelStatus[] = [];
    for (const e of this.running.values()) if (e.target.toLowerCase() === target.toLowerCase() && e.tag === tag) out.push(e.tunnel.status());
    return out;
  }

  all(): Array<TunnelStatus & { target: string; tpg: number }> {
    return [...this.running.values()].map((e) => ({ ...e.tunnel.status(), target: e.target, tpg: e.tag }));
  }

  closeAll(): void {
    for (const e of this.running.values()) e.tunnel.stop();
    this.running.clear();
  }
}

/** One line of `tunnels ls` / the tree: state, pool, latency and bytes. */
export function describeTunnel(s: TunnelStatus): string {
  const state = s.state === 'connected' ? `connected ${s.idle} idle, ${s.bound} in use`
    : s.state === 'retrying' ? `retrying in ${Math.ceil((s.retryInMs ?? 0) / 1000)} s`
      : s.state;
  const parts = [state];
  if (s.latencyMs !== undefined) parts.push(`latency ${s.latencyMs} ms`);
  parts.push(`rx ${s.rxBytes} B`, `tx ${s.txBytes} B`);
  if (s.lastError) parts.push(`last error: ${s.lastError}`);
  return parts.join(', ');
}
