// The agents' live sockets as the gateway core sees them; Node (ws) and Workers (hibernatable
// WebSockets) each implement it in their adapter.
export interface HubConnection {
  /** Unique per socket: the push queue of one socket is keyed by it. */
  readonly connId: string;
  readonly agentId: string;
  readonly servedTargets: readonly string[];
  send(frame: Uint8Array): void;
}

export interface Hub {
  /** Authenticated connections only (an agent that has not proven its token is not listed). */
  connections(): HubConnection[];
  /** Closes every socket of one agent (revocation). */
  closeAgent(agentId: string, code: number, reason: string): void;
  /**
   * Set by a hub whose sockets live elsewhere (the Workers shards): the fan-out of a change to `agentIds`
   * (every agent when undefined) is handed to it instead of sending from here.
   */
  fanOut?(agentIds: readonly string[] | undefined, version: number): void;
}

/** The subset of pino the gateway uses; Workers pass a console-backed one. Never pass secrets. */
export interface GatewayLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface GatewayDeps {
  readonly store: import('./store.js').Store;
  readonly hub: Hub;
  /** OUTPOST_SECRET_KEY: secrets at rest are sealed under a key derived from it. */
  readonly secretKey: string;
  /** The key-derivation function (scrypt), from the runtime adapter. */
  readonly kdf: import('./crypto.js').Kdf;
  /** SHA-256 hex of an agent token, from the runtime adapter when it has a cheaper one than Web Crypto's. */
  readonly hashToken?: (token: string) => string;
  /** OUTPOST_ADMIN_TOKEN: Bearer token of the admin REST API. */
  readonly adminToken: string;
  readonly logger: GatewayLogger;
  /**
   * Where the agents' command results go (gateway/agent-commands.ts). Absent: this gateway's own registry.
   * A Workers shard holds the sockets while the coordinator sent the commands, so it forwards them there.
   */
  readonly commandResults?: CommandResultSink;
}

/** The receiving end of command results: a result frame from a socket, or the socket's close. */
export interface CommandResultSink {
  answered(connId: string, msg: import('../shared/control-commands.js').ResultMessage): void;
  lost(connId: string): void;
}
