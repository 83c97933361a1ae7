// Gateway side of the control link: authenticate an agent, answer hello with its snapshot, record
// ack/nack/status. Runtime-free: adapters feed frames in and give a peer to send/close on.
import { CloseCode, MAX_FRAME_BYTES, PING_TEXT, PONG_TEXT, ProtocolError, decodeAgentMessage, encodeMessage, type AgentMessage } from '../shared/control-protocol.js';
import { AgentCommands } from './agent-commands.js';
import { sha256Hex } from './crypto.js';
import { Fleet } from './fleet.js';
import type { GatewayDeps } from './hub.js';
import { gatewayMetrics } from './metrics.js';
import { answerAgentRequest } from './migrations.js';
import type { AgentRecord } from './store.js';

/** One socket's state. On Workers it lives in the socket's attachment, so it must stay plain data. */
export interface PeerState {
  connId: string;
  agentId?: string;
  /** What the agent says it serves: shown in GET /v1/agents, never used to choose its policy. */
  servedTargets: string[];
}

export interface ControlPeer {
  readonly state: PeerState;
  send(data: Uint8Array | string): void;
  close(code: number, reason: string): void;
  /** Called after `state` changed (Workers persist it with serializeAttachment). */
  saveState(): void;
}

const now = (): string => new Date().toISOString();

export class ControlService {
  private readonly fleet: Fleet;

  constructor(private readonly deps: GatewayDeps) {
    this.fleet = Fleet.for(deps);
  }

  /** Agent for an `Authorization: Bearer <token>` header value, or undefined. */
  async authenticate(authorization: string | null | undefined): Promise<AgentRecord | undefined> {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
    return m ? this.agentForToken(m[1]!) : undefined;
  }

  async agentForToken(token: string): Promise<AgentRecord | undefined> {
    if (token.length > 512) return undefined;
    return this.deps.store.findAgentByTokenHash(this.deps.hashToken ? this.deps.hashToken(token) : await sha256Hex(token));
  }

  /** Handles one frame; protocol errors close this socket only, never throw to the adapter. */
  async onFrame(peer: ControlPeer, data: Uint8Array | string): Promise<void> {
    try {
      if (typeof data === 'string') {
        if (data === PING_TEXT) return peer.send(PONG_TEXT);
        throw new ProtocolError('text frames other than ping are not part of the protocol', 'malformed');
      }
      if (data.byteLength > MAX_FRAME_BYTES) throw new ProtocolError(`frame of ${data.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`, 'too_big');
      await this.onMessage(peer, decodeAgentMessage(data));
    } catch (e) {
      const agent_id = peer.state.agentId;
      if (e instanceof ProtocolError) {
        this.deps.logger.warn({ agent_id, err: e.message }, 'closing control socket: bad frame');
        peer.close(e.code === 'too_big' ? CloseCode.tooBig : CloseCode.invalidData, e.code === 'too_big' ? 'frame too big' : 'malformed frame');
      } else {
        this.deps.logger.error({ agent_id, err: (e as Error).message }, 'control socket failed');
        peer.close(CloseCode.internalError, 'internal error');
      }
    }
  }

  private async onMessage(peer: ControlPeer, msg: AgentMessage): Promise<void> {
    const { store, logger } = this.deps;
    if (peer.state.agentId === undefined) {
      const agent = msg.type === 'hello' && msg.token ? await this.agentForToken(msg.token) : undefined;
      if (!agent) {
        logger.warn({}, 'control socket refused: no valid agent token');
        return peer.close(CloseCode.policyViolation, 'unauthorized');
      }
      peer.state.agentId = agent.id;
      peer.saveState();
    }
    const agentId = peer.state.agentId;
    // Revocation closes the agent's sockets (DELETE /v1/agents/:id); a hello is checked again because it
    // may have been in flight meanwhile. Acks and statuses are not: one read per ack is the fleet's hot path,
    // and a report about a deleted agent updates no row.
    if (msg.type === 'hello' && !(await store.getAgent(agentId))) return peer.close(CloseCode.policyViolation, 'agent revoked');
    const conn = { connId: peer.state.connId, agentId, servedTargets: peer.state.servedTargets, send: (f: Uint8Array) => peer.send(f) };
    switch (msg.type) {
      case 'hello': {
        peer.state.servedTargets = [...msg.served_targets];
        peer.saveState();
        // reports are batched (one transaction per tick): a reconnecting fleet is not one fsync per agent
        this.fleet.record(agentId, { last_seen: now(), applied_version: msg.applied_version, agent_version: msg.agent_version, served_targets: msg.served_targets });
        if (msg.inventory) await store.setInventory(agentId, msg.inventory);
        logger.info({ agent_id: agentId, applied_version: msg.applied_version, served_targets: msg.served_targets.length }, 'agent hello');
        gatewayMetrics(this.deps).event('connected', agentId, `agent ${msg.agent_version}, policy version ${msg.applied_version}`);
        await this.logUnassigned(agentId, msg.served_targets);
        this.fleet.hello({ ...conn, servedTargets: peer.state.servedTargets });
        return;
      }
      case 'ack':
        this.fleet.record(agentId, { last_seen: now(), applied_version: msg.version, last_error: null });
        this.fleet.answered(conn.connId, msg.version);
        logger.info({ agent_id: agentId, version: msg.version }, 'agent applied policy');
        gatewayMetrics(this.deps).acked(agentId, msg.version);
        return;
      case 'nack':
        this.fleet.record(agentId, { last_seen: now(), last_error: `version ${msg.version}: ${msg.error.slice(0, 1000)}` });
        this.fleet.answered(conn.connId, msg.version);
        logger.warn({ agent_id: agentId, version: msg.version, err: msg.error.slice(0, 1000) }, 'agent rejected policy');
        gatewayMetrics(this.deps).event('rejected', agentId, `version ${msg.version}: ${msg.error}`);
        return;
      case 'result':
        (this.deps.commandResults ?? AgentCommands.for(this.deps)).answered(conn.connId, msg);
        return;
      case 'request':
        // answered without holding the socket's other frames back: a migration start talks to agents itself
        void answerAgentRequest(this.deps, agentId, msg).then((r) => peer.send(encodeMessage(r)),
          (e: Error) => logger.warn({ agent_id: agentId, err: e.message }, 'agent request not answered'));
        return;
      case 'status': {
        const changed = msg.served_targets !== undefined && msg.served_targets.join('\n') !== peer.state.servedTargets.join('\n');
        this.fleet.record(agentId, { last_seen: now(), status: msg.status, ...(msg.served_targets ? { served_targets: msg.served_targets } : {}) });
        if (msg.inventory) await store.setInventory(agentId, msg.inventory);
        if (changed) {
          peer.state.servedTargets = [...msg.served_targets!];
          peer.saveState();
          await this.logUnassigned(agentId, peer.state.servedTargets);
        }
        return;
      }
    }
  }

  /** An agent's claim to serve a target gets it nothing: policy follows the assignments only. */
  private async logUnassigned(agentId: string, served: readonly string[]): Promise<void> {
    const assigned = new Set((await this.deps.store.assignedTargets(agentId)).map((t) => t.toLowerCase()));
    const ignored = served.filter((t) => !assigned.has(t.toLowerCase()));
    if (ignored.length > 0) this.deps.logger.warn({ agent_id: agentId, targets: ignored.slice(0, 20), count: ignored.length }, 'agent serves targets not assigned to it: no policy sent for them');
  }

  async onClose(peer: ControlPeer): Promise<void> {
    const agentId = peer.state.agentId;
    if (agentId === undefined) return;
    (this.deps.commandResults ?? AgentCommands.for(this.deps)).lost(peer.state.connId);
    this.fleet.record(agentId, { last_seen: now() });
    this.fleet.forget(peer.state.connId);
    this.deps.logger.info({ agent_id: agentId }, 'agent disconnected');
    gatewayMetrics(this.deps).event('disconnected', agentId);
  }
}
