// The gateway's operator view, mounted by one line in app.ts: GET /metrics (Prometheus text format 0.0.4,
// admin token) and the dashboard under /ui/. Runtime-free (Workers and Node): the text format is written
// here by hand rather than with prom-client, which needs Node; both runtimes give the same output.
import type { Context, Hono } from 'hono';
import { matchedRoutes } from 'hono/route';
import { safeEqual } from './crypto.js';
import type { GatewayDeps } from './hub.js';
import { mountUi } from './ui/routes.js';

/** Push-to-ack buckets (seconds): a loopback agent acks in milliseconds, a far site over a slow link in seconds. */
const ACK_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const MAX_PENDING = 10_000;
const MAX_EVENTS = 200;

export interface FleetEvent {
  readonly at: string; // ISO time
  readonly kind: 'connected' | 'disconnected' | 'applied' | 'rejected';
  readonly agent_id: string;
  readonly detail?: string;
}

/** In-memory figures of one gateway instance (per process on Node, per Durable Object on Workers). */
export class GatewayMetrics {
  private readonly requests = new Map<string, number>();
  // agent → (version → push time, ms); per agent so an ack costs its own pushes, not the fleet's
  private readonly pending = new Map<string, Map<number, number>>();
  private readonly ackCounts = ACK_BUCKETS.map(() => 0);
  private ackSum = 0;
  private ackCount = 0;
  private readonly events: FleetEvent[] = [];

  request(method: string, route: string, status: number): void {
    const k = `${method}\n${route}\n${status}`;
    this.requests.set(k, (this.requests.get(k) ?? 0) + 1);
  }

  /** A snapshot of `version` went to an agent (hello answer or push). */
  pushed(agentId: string, version: number): void {
    let mine = this.pending.get(agentId);
    if (!mine) {
      if (this.pending.size >= MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
      this.pending.set(agentId, (mine = new Map()));
    }
    if (!mine.has(version)) mine.set(version, Date.now());
  }

  /** The agent applied `version`: every push of it (or older, superseded) is answered. */
  acked(agentId: string, version: number): void {
    const now = Date.now();
    let first: number | undefined;
    const mine = this.pending.get(agentId);
    for (const [v, t] of mine ?? []) {
      if (v > version) continue;
      if (v === version) first = t;
      mine!.delete(v);
    }
    if (mine?.size === 0) this.pending.delete(agentId);
    if (first === undefined) return;
    const s = (now - first) / 1000;
    this.ackSum += s;
    this.ackCount++;
    ACK_BUCKETS.forEach((b, i) => { if (s <= b) this.ackCounts[i]!++; });
    this.event('applied', agentId, `version ${version} in ${Math.round(s * 1000)} ms`);
  }

  event(kind: FleetEvent['kind'], agentId: string, detail?: string): void {
    this.events.push({ at: new Date().toISOString(), kind, agent_id: agentId, ...(detail ? { detail: detail.slice(0, 500) } : {}) });
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  recentEvents(): readonly FleetEvent[] {
    return [...this.events].reverse();
  }

  async render(deps: GatewayDeps): Promise<string> {
    const out = new PromText();
    const live = new Map<string, number>();
    for (const c of deps.hub.connections()) live.set(c.agentId, (live.get(c.agentId) ?? 0) + 1);
    const agents = await deps.store.listAgents();
    const version = await deps.store.policyVersion();
    out.family('outpost_gateway_policy_version', 'gauge', 'Current fleet policy version');
    out.sample('outpost_gateway_policy_version', {}, version);
    out.family('outpost_gateway_agents', 'gauge', 'Enrolled agents by connection state');
    out.sample('outpost_gateway_agents', { state: 'connected' }, agents.filter((a) => live.has(a.id)).length);
    out.sample('outpost_gateway_agents', { state: 'disconnected' }, agents.filter((a) => !live.has(a.id)).length);
    out.family('outpost_gateway_agent_connected', 'gauge', 'The agent has an authenticated control socket: 1, else 0');
    for (const a of agents) out.sample('outpost_gateway_agent_connected', { agent_id: a.id, agent: a.name }, live.has(a.id) ? 1 : 0);
    out.family('outpost_gateway_agent_policy_version', 'gauge', 'Policy version the agent last applied (absent before its first hello)');
    for (const a of agents) if (a.applied_version !== null) out.sample('outpost_gateway_agent_policy_version', { agent_id: a.id, agent: a.name }, a.applied_version);
    out.family('outpost_gateway_agent_last_seen_timestamp_seconds', 'gauge', 'Unix time of the last frame from the agent');
    for (const a of agents) if (a.last_seen) out.sample('outpost_gateway_agent_last_seen_timestamp_seconds', { agent_id: a.id, agent: a.name }, Date.parse(a.last_seen) / 1000);
    out.family('outpost_gateway_policy_push_ack_seconds', 'histogram', 'Time from sending a policy snapshot to the agent acknowledging that version');
    ACK_BUCKETS.forEach((b, i) => out.sample('outpost_gateway_policy_push_ack_seconds_bucket', { le: String(b) }, this.ackCounts[i]!));
    out.sample('outpost_gateway_policy_push_ack_seconds_bucket', { le: '+Inf' }, this.ackCount);
    out.sample('outpost_gateway_policy_push_ack_seconds_sum', {}, this.ackSum);
    out.sample('outpost_gateway_policy_push_ack_seconds_count', {}, this.ackCount);
    out.family('outpost_gateway_http_requests_total', 'counter', 'REST requests by method, matched route and status');
    for (const [k, n] of this.requests) {
      const [method, route, status] = k.split('\n') as [string, string, string];
      out.sample('outpost_gateway_http_requests_total', { method, route, status }, n);
    }
    return out.text();
  }
}

/** Prometheus text exposition format 0.0.4. */
class PromText {
  private readonly lines: string[] = [];

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): void {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: Record<string, string>, value: number): void {
    const l = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
    const v = Number.isNaN(value) ? 'NaN' : value === Infinity ? '+Inf' : value === -Infinity ? '-Inf' : String(value);
    this.lines.push(`${name}${l.length ? `{${l.join(',')}}` : ''} ${v}`);
  }

  text(): string {
    return this.lines.join('\n') + '\n';
  }
}

// One instance per deps object: createApp and ControlService share deps on both runtimes.
const instances = new WeakMap<GatewayDeps, GatewayMetrics>();

export function gatewayMetrics(deps: GatewayDeps): GatewayMetrics {
  let m = instances.get(deps);
  if (!m) instances.set(deps, (m = new GatewayMetrics()));
  return m;
}

export async function isAdmin(c: Context, deps: GatewayDeps): Promise<boolean> {
  const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
  return Boolean(m && (await safeEqual(m[1]!, deps.adminToken)));
}

/** Mounted before every route, so the request counter wraps them all. */
export function mountOperatorView(app: Hono, deps: GatewayDeps): void {
  const metrics = gatewayMetrics(deps);
  app.use('*', async (c, next) => {
    await next();
    // The pattern of the route the request was for (bounded cardinality), even when a middleware answered
    // first (401, 413); middleware-only matches (method ALL) mean no route: those share one label.
    const route = matchedRoutes(c).filter((r) => r.method !== 'ALL').at(-1)?.path ?? 'unmatched';
    metrics.request(c.req.method, route, c.res.status);
  });
  app.get('/metrics', async (c) => {
    if (!(await isAdmin(c, deps))) return c.json({ error: 'missing or invalid admin token' }, 401);
    return c.body(await metrics.render(deps), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
  });
  mountUi(app, { authorized: (c) => isAdmin(c, deps), events: () => metrics.recentEvents() });
}
