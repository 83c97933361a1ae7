// The gateway's admin REST API (Hono, Web-standard APIs only): agents, ACLs, discovery auth.
// Runtime adapters: node/main.ts (Node) and worker.ts (Cloudflare Workers + Durable Object).
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { newToken, safeEqual, sha256Hex } from './crypto.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { DISCOVERY_CONTEXT, Fleet, aclContext } from './fleet.js';
import type { GatewayDeps } from './hub.js';
import { mountOperatorView } from './metrics.js';
import type { ChapInfo } from './store.js';
import { checkIscsiName, parseAclBody, parseAgentBody, parseDiscoveryAuthBody } from './validate.js';

export type { GatewayDeps } from './hub.js';

const MAX_BODY = 64 * 1024;

async function jsonBody(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw badRequest('request body is not valid JSON');
  }
}

function chapInfo(c: { userid: string; password: string; mutual_userid?: string; mutual_password?: string }): ChapInfo {
  return {
    userid: c.userid,
    ...(c.mutual_userid !== undefined ? { mutual_userid: c.mutual_userid } : {}),
    has_password: c.password.length > 0,
    has_mutual_password: (c.mutual_password ?? '').length > 0,
  };
}

const withWarnings = <T extends object>(body: T, warnings: string[]): T & { warnings?: string[] } => (warnings.length > 0 ? { ...body, warnings } : body);

export function createApp(deps: GatewayDeps): Hono {
  const { store, hub, logger } = deps;
  const fleet = new Fleet(deps);
  const app = new Hono();
  mountOperatorView(app, deps); // /metrics, /ui/ and the request counter (gateway/metrics.ts)

  app.onError((err, c) => {
    if (err instanceof ApiError) return c.json({ error: err.message }, err.status);
    logger.error({ path: c.req.path, err: err.message }, 'request failed');
    return c.json({ error: 'internal error' }, 500);
  });
  app.notFound((c) => c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404));

  app.get('/healthz', (c) => c.json({ ok: true }));

  app.use('/v1/*', async (c, next) => {
    const m = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '');
    if (!m || !(await safeEqual(m[1]!, deps.adminToken))) throw new ApiError(401, 'missing or invalid admin token');
    await next();
  });
  app.use('/v1/*', bodyLimit({ maxSize: MAX_BODY, onError: () => { throw new ApiError(413, `request body exceeds ${MAX_BODY} bytes`); } }));

  // Agents -----------------------------------------------------------------------------------------
  app.post('/v1/agents', async (c) => {
    const { name } = parseAgentBody(await jsonBody(c));
    const id = crypto.randomUUID();
    const token = newToken();
    await store.createAgent({ id, name, token_hash: await sha256Hex(token), created_at: new Date().toISOString(), last_seen: null, applied_version: null, last_error: null, agent_version: null, served_targets: [], status: null });
    logger.info({ agent_id: id, name }, 'agent enrolled');
    return c.json({ id, name, token }, 201);
  });

  app.get('/v1/agents', async (c) => {
    const live = new Map<string, number>();
    for (const conn of hub.connections()) live.set(conn.agentId, (live.get(conn.agentId) ?? 0) + 1);
    const policy_version = await store.policyVersion();
    const agents = (await store.listAgents()).map((a) => ({
      id: a.id,
      name: a.name,
      connected: live.has(a.id),
      connections: live.get(a.id) ?? 0,
      created_at: a.created_at,
      last_seen: a.last_seen,
      agent_version: a.agent_version,
      applied_version: a.applied_version,
      in_sync: a.applied_version === policy_version,
      last_error: a.last_error,
      served_targets: a.served_targets,
      status: a.status,
    }));
    return c.json({ policy_version, agents });
  });

  app.delete('/v1/agents/:id', async (c) => {
    const id = c.req.param('id');
    if (!(await store.deleteAgent(id))) throw notFound(`no agent ${id}`);
    hub.closeAgent(id, 1008, 'agent revoked');
    logger.info({ agent_id: id }, 'agent revoked');
    return c.json({ id, revoked: true });
  });

  // ACLs -------------------------------------------------------------------------------------------
  app.put('/v1/acls/:target/:initiator', async (c) => {
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    const initiator = checkIscsiName(c.req.param('initiator'), 'initiator IQN');
    const warnings: string[] = [];
    const body = parseAclBody(await jsonBody(c), warnings);
    const box = await fleet.box();
    const info = body.chap ? chapInfo(body.chap) : null;
    await store.putAcl({ target, initiator, chap_info: info, chap_sealed: body.chap ? await box.seal(body.chap, aclContext(target, initiator)) : null, mapped_luns: body.mapped_luns, updated_at: new Date().toISOString() });
    const version = await store.bumpPolicyVersion();
    logger.info({ target, initiator, version, chap: info !== null }, 'acl set');
    const pushed = await fleet.push(target, version);
    return c.json(withWarnings({ target, initiator, chap: info, mapped_luns: body.mapped_luns, version, pushed_to: pushed }, warnings));
  });

  app.delete('/v1/acls/:target/:initiator', async (c) => {
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    const initiator = checkIscsiName(c.req.param('initiator'), 'initiator IQN');
    if (!(await store.deleteAcl(target, initiator))) throw notFound(`no ACL for ${initiator} on ${target}`);
    const version = await store.bumpPolicyVersion();
    logger.info({ target, initiator, version }, 'acl deleted');
    const pushed = await fleet.push(target, version);
    return c.json({ target, initiator, deleted: true, version, pushed_to: pushed });
  });

  app.get('/v1/acls/:target', async (c) => {
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    const acls = (await store.listAcls(target)).map((a) => ({ initiator: a.initiator, chap: a.chap_info, mapped_luns: a.mapped_luns, updated_at: a.updated_at }));
    return c.json({ target, version: await store.policyVersion(), acls });
  });

  // Discovery auth ---------------------------------------------------------------------------------
  app.put('/v1/discovery-auth', async (c) => {
    const warnings: string[] = [];
    const d = parseDiscoveryAuthBody(await jsonBody(c), warnings);
    const hasCreds = d.password.length > 0;
    const { enable, ...creds } = d;
    const box = await fleet.box();
    await store.putDiscoveryAuth({ enable, info: hasCreds ? chapInfo(creds) : null, sealed: hasCreds ? await box.seal(creds, DISCOVERY_CONTEXT) : null, updated_at: new Date().toISOString() });
    const version = await store.bumpPolicyVersion();
    logger.info({ enable, version }, 'discovery auth set');
    const pushed = await fleet.push(undefined, version);
    return c.json(withWarnings({ enable, chap: hasCreds ? chapInfo(creds) : null, version, pushed_to: pushed }, warnings));
  });

  app.get('/v1/discovery-auth', async (c) => {
    const d = await store.getDiscoveryAuth();
    return c.json(d ? { enable: d.enable, chap: d.info, updated_at: d.updated_at } : { enable: false, chap: null, updated_at: null });
  });

  return app;
}
