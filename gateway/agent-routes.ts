// REST routes that act on one agent through the control commands (gateway/agent-commands.ts): liveness,
// the ALUA state of a LUN's port group, and snapshots of an object backstore.
import type { Context, Hono } from 'hono';
import { ALUA_STATE_NAMES } from '../shared/control-commands.js';
import { AgentCommands } from './agent-commands.js';
import { badRequest, notFound } from './errors.js';
import type { GatewayDeps } from './hub.js';
import { checkIscsiName } from './validate.js';

async function body(c: Context): Promise<Record<string, unknown>> {
  let v: unknown;
  try {
    v = await c.req.json();
  } catch {
    throw badRequest('request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest('body must be an object');
  return v as Record<string, unknown>;
}

function only(b: Record<string, unknown>, known: string[]): void {
  const extra = Object.keys(b).filter((k) => !known.includes(k));
  if (extra.length) throw badRequest(`unknown field ${extra.map((k) => JSON.stringify(k)).join(', ')} (known: ${known.join(', ')})`);
}

const lunParam = (s: string): number => {
  if (!/^\d{1,5}$/.test(s) || Number(s) > 65535) throw badRequest(`LUN ${JSON.stringify(s)} must be an integer in 0..65535`);
  return Number(s);
};

export function mountAgentRoutes(app: Hono, deps: GatewayDeps): void {
  const cmd = AgentCommands.for(deps);
  const agent = async (c: Context): Promise<string> => {
    const id = c.req.param('id')!;
    if (!(await deps.store.getAgent(id))) throw notFound(`no agent ${id}`);
    return id;
  };

  app.post('/v1/agents/:id/ping', async (c) => {
    const id = await agent(c);
    const t = Date.now();
    const r = await cmd.send<{ pong: boolean }>(id, 'ping', {});
    return c.json({ agent_id: id, pong: r.pong, rtt_ms: Date.now() - t });
  });

  // ALUA state of the port group the agent exports TARGET/LUN through (SPC-4 §5.15; changes raise 2A/06)
  app.put('/v1/agents/:id/targets/:target/luns/:lun/alua', async (c) => {
    const id = await agent(c);
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    const lun = lunParam(c.req.param('lun'));
    const b = await body(c);
    only(b, ['state']);
    if (typeof b.state !== 'string' || !(b.state in ALUA_STATE_NAMES)) throw badRequest(`state must be one of ${Object.keys(ALUA_STATE_NAMES).join(', ')}`);
    const r = await cmd.send<{ changed: boolean }>(id, 'alua.set', { target, lun, state: b.state });
    return c.json({ agent_id: id, target, lun, state: b.state, changed: r.changed });
  });

  // Snapshots of an object backstore: the agent's own `snapshot create|list|delete` shell command
  const backstore = (c: Context): string => {
    const name = c.req.param('name')!;
    if (!/^[A-Za-z0-9_.:@-]{1,128}$/.test(name)) throw badRequest(`backstore name ${JSON.stringify(name)} may hold only letters, digits and _ . : @ -`);
    return name;
  };
  app.post('/v1/agents/:id/backstores/:name/snapshots', async (c) => {
    const id = await agent(c);
    const name = backstore(c);
    const b = await body(c);
    only(b, ['name']);
    if (typeof b.name !== 'string') throw badRequest('name must be the snapshot name');
    const r = await cmd.send<{ output: string[] }>(id, 'snapshot.create', { backstore: name, name: b.name }, 60_000);
    return c.json({ agent_id: id, backstore: name, snapshot: b.name, output: r.output }, 201);
  });
  app.get('/v1/agents/:id/backstores/:name/snapshots', async (c) => {
    const id = await agent(c);
    const name = backstore(c);
    const r = await cmd.send<{ output: string[] }>(id, 'snapshot.list', { backstore: name });
    return c.json({ agent_id: id, backstore: name, output: r.output });
  });
  app.delete('/v1/agents/:id/backstores/:name/snapshots/:snap', async (c) => {
    const id = await agent(c);
    const name = backstore(c);
    const r = await cmd.send<{ output: string[] }>(id, 'snapshot.delete', { backstore: name, name: c.req.param('snap') }, 60_000);
    return c.json({ agent_id: id, backstore: name, snapshot: c.req.param('snap'), deleted: true, output: r.output });
  });
}
