// Gateway side of the control commands (shared/control-commands.ts): send one typed request to an agent
// over its control socket and await the result frame, with a timeout, so REST routes and the migration
// runner can drive agents. Runtime-free: it uses the hub's connections, as policy pushes do.
import { encodeMessage } from '../shared/control-protocol.js';
import { DEFAULT_COMMAND_TIMEOUT_MS, checkCommandArgs, CommandArgsError, type CommandOp, type ResultMessage } from '../shared/control-commands.js';
import { ApiError } from './errors.js';
import type { GatewayDeps } from './hub.js';

interface Pending {
  readonly connId: string;
  readonly agentId: string;
  readonly op: CommandOp;
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

const registries = new WeakMap<GatewayDeps, AgentCommands>();

/** Refused or failed commands: the agent's own message is kept, with who and what in front of it. */
export class AgentCommandError extends ApiError {
  constructor(status: 400 | 502 | 503 | 504, message: string, readonly agentMessage?: string) {
    super(status, message);
  }
}

export class AgentCommands {
  private readonly pending = new Map<string, Pending>();
  private seq = 0;

  private constructor(private readonly deps: GatewayDeps) {}

  /** The one registry of a gateway (the REST app sends; the control service routes the answers in). */
  static for(deps: GatewayDeps): AgentCommands {
    let r = registries.get(deps);
    if (!r) registries.set(deps, (r = new AgentCommands(deps)));
    return r;
  }

  /** True when the agent has an authenticated control socket open. */
  connected(agentId: string): boolean {
    return this.deps.hub.connections().some((c) => c.agentId === agentId);
  }

  /**
   * Sends `op` to the agent and resolves with its result. Rejects with 503 when the agent has no control
   * socket, 504 when it does not answer within `timeoutMs`, 502 with its message when it refuses or fails.
   */
  send<T = unknown>(agentId: string, op: CommandOp, args: Record<string, unknown>, timeoutMs = DEFAULT_COMMAND_TIMEOUT_MS): Promise<T> {
    try {
      checkCommandArgs(op, args);
    } catch (e) {
      if (e instanceof CommandArgsError) return Promise.reject(new AgentCommandError(400, e.message));
      throw e;
    }
    // the newest socket: an agent that reconnected may still have a half-closed older one listed
    const conns = this.deps.hub.connections().filter((c) => c.agentId === agentId);
    const conn = conns[conns.length - 1];
    if (!conn) return Promise.reject(new AgentCommandError(503, `agent ${agentId} is not connected to the gateway; ${op} not sent`));
    const id = `c${++this.seq}-${crypto.randomUUID().slice(0, 8)}`;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AgentCommandError(504, `agent ${agentId} did not answer ${op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { connId: conn.connId, agentId, op, resolve: resolve as (v: unknown) => void, reject, timer });
      try {
        conn.send(encodeMessage({ type: 'command', id, op, args }));
      } catch (e) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(new AgentCommandError(503, `agent ${agentId}: ${op} could not be sent: ${(e as Error).message}`));
      }
    });
  }

  /** A result frame from `connId`; one for an unknown id (late, after its timeout) is dropped. */
  answered(connId: string, msg: ResultMessage): void {
    const p = this.pending.get(msg.id);
    if (!p || p.connId !== connId) return; // an answer from another socket is not the one asked
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.ok) p.resolve(msg.result);
    else p.reject(new AgentCommandError(502, `agent ${p.agentId}: ${p.op} failed: ${msg.error ?? 'no reason given'}`, msg.error));
  }

  /** The socket closed: what was asked over it will not be answered. */
  lost(connId: string): void {
    for (const [id, p] of this.pending) {
      if (p.connId !== connId) continue;
      this.pending.delete(id);
      clearTimeout(p.timer);
      p.reject(new AgentCommandError(503, `agent ${p.agentId} disconnected before answering ${p.op}`));
    }
  }
}
