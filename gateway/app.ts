// The gateway's admin REST API (Hono, Web-standard APIs only): agents, ACLs, discovery auth.
// Runtime adapters: node/main.ts (Node) and worker.ts (Cloudflare Workers + Durable Object).
import { Hono, type Context } from 'hono';
import { POLICY_LIMITS } from '../shared/policy.js';
import { bodyLimit } from 'hono/body-limit';
import { newToken, safeEqual, sha256Hex } from './crypto.js';
import { ApiError, badRequest, notFound } from './errors.js';
import { DISCOVERY_CONTEXT, Fleet, aclContext, type PendingChange } from './fleet.js';
import type { GatewayDeps } from './hub.js';
import { mountOperatorView } from './metrics.js';
import { mountAgentRoutes } from './agent-routes.js';
import { mountMigrationRoutes } from './migrations.js';
import type { AclRecord, ChapInfo, Store } from './store.js';
import { checkIscsiName, parseAclBody, parseAgentBody, parseAssignBody, parseDiscoveryAuthBody } from './validate.js';

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

/** An empty body is allowed where a route takes no fields. */
async function optionalJsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    throw badRequest('request body is not valid JSON');
  }
}

const aclView = (a: AclRecord) => ({ target: a.target, initiator: a.initiator, chap: a.chap_info, mapped_luns: a.mapped_luns, updated_at: a.updated_at });

/**
 * What the agents assigned to `target` reported about it: a PUT that would replace one of their local
 * ACLs is a conflict (409), and a mapped LUN their TPGs do not have could never apply (400).
 */
async function checkAgainstInventories(store: Store, target: string, initiator: string, luns: readonly { tpg_lun: number }[]): Promise<void> {
  // one read for the whole target: at fleet scale, a read per assigned agent would cost the PUT seconds
  for (const [id, inv] of await store.inventoriesForTarget(target)) {
    const entry = inv && Object.entries(inv).find(([t]) => t.toLowerCase() === target.toLowerCase())?.[1];
    if (!entry) continue; // the agent has not reported this target (yet): it nacks what cannot apply
    const name = (await store.getAgent(id))?.name ?? id;
    if (entry.local_acls.some((i) => i.toLowerCase() === initiator.toLowerCase())) {
      throw new ApiError(409, `agent ${name} has a local ACL for ${initiator} on ${target}; a gateway ACL would replace it silently. Delete the local ACL on the agent first (outpost /iscsi/${target}/tpg1/acls delete ${initiator})`);
    }
    const have = new Set(entry.tpg_luns);
    const missing = luns.filter((l) => !have.has(l.tpg_lun)).map((l) => l.tpg_lun);
    if (missing.length > 0) throw badRequest(`tpg_lun ${missing.join(', ')} does not exist on agent ${name} for ${target} (its TPG LUNs: ${[...have].sort((a, b) => a - b).join(', ') || 'none'})`);
  }
}

const withWarnings = <T extends object>(body: T, warnings: string[]): T & { warnings?: string[] } => (warnings.length > 0 ? { ...body, warnings } : body);

export function createApp(deps: GatewayDeps): Hono {
  const { store, hub, logger } = deps;
  const fleet = Fleet.for(deps);
  const refuseOverflow = async (agentIds: readonly string[], change: PendingChange): Promise<void> => {
    const why = await fleet.wouldOverflow(agentIds, change);
    if (why) throw new ApiError(413, why);
  };
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
    const token_hash = await sha256Hex(token);
    await fleet.serializeWrite(async () => {
      if (await store.findAgentByName(name)) throw new ApiError(409, `an agent named ${JSON.stringify(name)} is already enrolled (names are unique, case-insensitively)`);
      await store.createAgent({ id, name, token_hash, created_at: new Date().toISOString(), last_seen: null, applied_version: null, last_error: null, agent_version: null, served_targets: [], status: null });
    });
    logger.info({ agent_id: id, name }, 'agent enrolled');
    return c.json({ id, name, token }, 201);
  });

  /** Every agent's state and the fleet summary, from one read of the store after the queued acks. */
  const fleetState = async () => {
    await fleet.flushRecords();
    const live = new Map<string, number>();
    for (const conn of hub.connections()) live.set(conn.agentId, (live.get(conn.agentId) ?? 0) + 1);
    const policy_version = await store.policyVersion();
    const desired = await store.desiredVersions();
    const list = await store.listAgents();
    const summary = { agents: list.length, connected: 0, in_sync: 0, pending: 0, failed: 0 };
    const agents = list.map((a) => {
      // in sync: it acked a version at least as new as the last change that concerns it
      const desired_version = desired.get(a.id) ?? 0;
      const in_sync = a.applied_version !== null && a.applied_version >= desired_version;
      // not in sync: failed when the last word about it is an error (nack, or a push that could not go)
      const failed = !in_sync && a.last_error !== null;
      summary.connected += live.has(a.id) ? 1 : 0;
      summary[in_sync ? 'in_sync' : failed ? 'failed' : 'pending']++;
      return { a, desired_version, in_sync, pending: !in_sync && !failed, connections: live.get(a.id) ?? 0 };
    });
    return { policy_version, summary, agents };
  };

  app.get('/v1/agents', async (c) => {
    const { policy_version, summary, agents: rows } = await fleetState();
    const assigned = await Promise.all(rows.map(({ a }) => store.assignedTargets(a.id)));
    const agents = rows.map(({ a, desired_version, in_sync, pending, connections }, i) => ({
      id: a.id,
      name: a.name,
      connected: connections > 0,
      connections,
      created_at: a.created_at,
      last_seen: a.last_seen,
      agent_version: a.agent_version,
      applied_version: a.applied_version,
      desired_version,
      in_sync,
      pending,
      last_error: a.last_error,
      assigned_targets: assigned[i]!,
      served_targets: a.served_targets,
      status: a.status,
    }));
    return c.json({ policy_version, summary, agents });
  });

  // Fan-out progress: how much of the fleet holds the newest policy that concerns it.
  app.get('/v1/fleet', async (c) => {
    const { policy_version, summary } = await fleetState();
    return c.json({ policy_version, ...summary, fanout: fleet.fanout() });
  });

  app.delete('/v1/agents/:id', async (c) => {
    const id = c.req.param('id');
    if (!(await store.deleteAgent(id))) throw notFound(`no agent ${id}`);
    hub.closeAgent(id, 1008, 'agent revoked');
    logger.info({ agent_id: id }, 'agent revoked');
    return c.json({ id, revoked: true });
  });

  // Target assignment: an agent receives policy only for the targets assigned to it ----------------
  app.put('/v1/agents/:id/targets/:target', async (c) => {
    const id = c.req.param('id');
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    parseAssignBody(await optionalJsonBody(c));
    if (!(await store.getAgent(id))) throw notFound(`no agent ${id}`);
    const version = await fleet.serializeWrite(async () => {
      await refuseOverflow([id], { kind: 'assign', agentId: id, target });
      return store.assign(id, target);
    });
    if (version === undefined) return c.json({ agent_id: id, target, assigned: true, changed: false, version: await store.policyVersion(), pushed_to: 0 });
    logger.info({ agent_id: id, target, version }, 'target assigned');
    return c.json({ agent_id: id, target, assigned: true, changed: true, version, ...fleet.push([id], version) });
  });

  app.delete('/v1/agents/:id/targets/:target', async (c) => {
    const id = c.req.param('id');
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    if (!(await store.getAgent(id))) throw notFound(`no agent ${id}`);
    const version = await store.unassign(id, target);
    if (version === undefined) throw notFound(`${target} is not assigned to agent ${id}`);
    logger.info({ agent_id: id, target, version }, 'target unassigned');
    return c.json({ agent_id: id, target, assigned: false, version, ...fleet.push([id], version) });
  });

  app.get('/v1/agents/:id/targets', async (c) => {
    const id = c.req.param('id');
    if (!(await store.getAgent(id))) throw notFound(`no agent ${id}`);
    return c.json({ agent_id: id, targets: await store.assignedTargets(id) });
  });

  // ACLs -------------------------------------------------------------------------------------------
  app.put('/v1/acls/:target/:initiator', async (c) => {
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    const initiator = checkIscsiName(c.req.param('initiator'), 'initiator IQN');
    const warnings: string[] = [];
    const body = parseAclBody(await jsonBody(c), warnings);
    const info = body.chap ? chapInfo(body.chap) : null;
    const version = await fleet.serializeWrite(async () => {
      await checkAgainstInventories(store, target, initiator, body.mapped_luns);
      if ((await store.listAcls(target)).length >= POLICY_LIMITS.aclsPerTarget && !(await store.getAcl(target, initiator))) {
        throw badRequest(`${target} has ${POLICY_LIMITS.aclsPerTarget} ACLs, the most an agent accepts for one target`);
      }
      await refuseOverflow(await store.agentsForTarget(target), { kind: 'acl', target, acl: body.chap ? { initiator, chap: body.chap, mapped_luns: body.mapped_luns } : { initiator, mapped_luns: body.mapped_luns } });
      const box = await fleet.box();
      const sealed = body.chap ? await box.seal(body.chap, aclContext(target, initiator)) : null;
      return store.putAcl({ target, initiator, chap_info: info, chap_sealed: sealed, mapped_luns: body.mapped_luns, updated_at: new Date().toISOString() });
    });
    logger.info({ target, initiator, version, chap: info !== null }, 'acl set');
    const pushed = fleet.push(await store.agentsForTarget(target), version);
    return c.json(withWarnings({ target, initiator, chap: info, mapped_luns: body.mapped_luns, version, ...pushed }, warnings));
  });

  app.delete('/v1/acls/:target/:initiator', async (c) => {
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    const initiator = checkIscsiName(c.req.param('initiator'), 'initiator IQN');
    const version = await store.deleteAcl(target, initiator);
    if (version === undefined) throw notFound(`no ACL for ${initiator} on ${target}`);
    logger.info({ target, initiator, version }, 'acl deleted');
    const pushed = fleet.push(await store.agentsForTarget(target), version);
    return c.json({ target, initiator, deleted: true, version, ...pushed });
  });

  app.get('/v1/acls/:target', async (c) => {
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    const acls = (await store.listAcls(target)).map((a) => ({ initiator: a.initiator, chap: a.chap_info, mapped_luns: a.mapped_luns, updated_at: a.updated_at }));
    return c.json({ target, version: await store.policyVersion(), agents: await store.agentsForTarget(target), acls });
  });

  app.get('/v1/acls/:target/:initiator', async (c) => {
    const target = checkIscsiName(c.req.param('target'), 'target IQN');
    const initiator = checkIscsiName(c.req.param('initiator'), 'initiator IQN');
    const a = await store.getAcl(target, initiator);
    if (!a) throw notFound(`no ACL for ${initiator} on ${target}`);
    return c.json(aclView(a));
  });

  app.get('/v1/acls', async (c) => c.json({ version: await store.policyVersion(), acls: (await store.listAcls()).map(aclView) }));

  // Discovery auth ---------------------------------------------------------------------------------
  app.put('/v1/discovery-auth', async (c) => {
    const warnings: string[] = [];
    const d = parseDiscoveryAuthBody(await jsonBody(c), warnings);
    const hasCreds = d.password.length > 0;
    const { enable, ...creds } = d;
    const version = await fleet.serializeWrite(async () => {
      await refuseOverflow((await store.listAgents()).map((a) => a.id), { kind: 'discovery', discovery: d });
      const box = await fleet.box();
      const sealed = hasCreds ? await box.seal(creds, DISCOVERY_CONTEXT) : null;
      return store.putDiscoveryAuth({ enable, info: hasCreds ? chapInfo(creds) : null, sealed, updated_at: new Date().toISOString() });
    });
    logger.info({ enable, version }, 'discovery auth set');
    const pushed = fleet.push(undefined, version);
    return c.json(withWarnings({ enable, chap: hasCreds ? chapInfo(creds) : null, version, ...pushed }, warnings));
  });

  app.get('/v1/discovery-auth', async (c) => {
    const d = await store.getDiscoveryAuth();
    return c.json(d ? { enable: d.enable, chap: d.info, updated_at: d.updated_at } : { enable: false, chap: null, updated_at: null });
  });

  mountAgentRoutes(app, deps); // ping, ALUA, snapshots through the control commands (gateway/agent-routes.ts)
  mountMigrationRoutes(app, deps); // POST/GET /v1/migrations (gateway/migrations.ts)

  return app;
}
