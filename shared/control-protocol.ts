// Outpost control protocol: msgpack frames between agent and gateway over one WebSocket (xDS-style
// versioned snapshots: hello → snapshot → ack/nack; status flows back). Plain data, Uint8Array only.
// Versions: a snapshot's `version` is the fleet version of exactly the content it carries; the gateway
// sends one agent its snapshots in order and only the newest pending one; the agent nacks a version
// lower than the one it holds unless `fleet_epoch` differs from the held policy's (a reset fleet).
import { Packr } from 'msgpackr/index-no-eval';
import type { PolicySnapshot } from './policy.js';
import { CommandArgsError, decodeCommand, decodeReply, decodeRequest, decodeResult, type AgentRequestMessage, type CommandMessage, type ReplyMessage, type ResultMessage } from './control-commands.js';

/** Largest frame either side accepts; a bigger one closes that socket. */
export const MAX_FRAME_BYTES = 1024 * 1024;

/** Path of the WebSocket endpoint on the gateway. */
export const CONTROL_PATH = '/v1/connect';

/** Text keepalive: the gateway answers PING_TEXT with PONG_TEXT (auto-response on Workers). */
export const PING_TEXT = 'ping';
export const PONG_TEXT = 'pong';

/** WebSocket close codes used by the link (RFC 6455 §7.4). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  invalidData: 1007,
  policyViolation: 1008,
  tooBig: 1009,
  internalError: 1011,
} as const;

export interface HelloMessage {
  readonly type: 'hello';
  readonly agent_version: string;
  readonly applied_version: number;
  readonly served_targets: readonly string[];
  /** Alternative to the Authorization header, for clients that cannot set headers. */
  readonly token?: string;
  /** What the agent has locally, so the gateway can refuse policy that cannot apply (see TargetInventory). */
  readonly inventory?: Inventory;
}

/** Per target IQN the agent serves: its TPG LUN numbers and the initiators of its local (non-managed) ACLs. */
export interface TargetInventory { readonly tpg_luns: readonly number[]; readonly local_acls: readonly string[] }
export type Inventory = Readonly<Record<string, TargetInventory>>;
export interface AckMessage { readonly type: 'ack'; readonly version: number }
export interface NackMessage { readonly type: 'nack'; readonly version: number; readonly error: string }
export interface StatusMessage {
  readonly type: 'status';
  readonly status: Readonly<Record<string, unknown>>;
  /** Sent when the agent's set of targets changes; the gateway answers with a new snapshot. */
  readonly served_targets?: readonly string[];
  /** Sent with served_targets, and when the local LUNs or ACLs change. */
  readonly inventory?: Inventory;
}
export type AgentMessage = HelloMessage | AckMessage | NackMessage | StatusMessage | ResultMessage | AgentRequestMessage;

export interface SnapshotMessage { readonly type: 'snapshot'; readonly policy: PolicySnapshot }
export interface PingMessage { readonly type: 'ping'; readonly time: number }
export type GatewayMessage = SnapshotMessage | PingMessage | CommandMessage | ReplyMessage;

export class ProtocolError extends Error {
  constructor(message: string, readonly code: 'too_big' | 'malformed') {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Options both sides decode with; records are off so no build ever needs runtime eval. */
export const PACKR_OPTIONS = { useRecords: false, moreTypes: false, mapsAsObjects: true } as const;
const packr = new Packr(PACKR_OPTIONS);

export function encodeMessage(msg: AgentMessage | GatewayMessage): Uint8Array {
  const out = packr.pack(msg);
  if (out.byteLength > MAX_FRAME_BYTES) throw new ProtocolError(`frame of ${out.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`, 'too_big');
  return out;
}

/** Decodes one msgpack value; Node callers may pass msgpackr's standard build (same format, faster). */
export type Unpack = (frame: Uint8Array) => unknown;

function decodeObject(frame: Uint8Array, unpack: Unpack = (f) => packr.unpack(f)): Record<string, unknown> {
  if (frame.byteLength > MAX_FRAME_BYTES) throw new ProtocolError(`frame of ${frame.byteLength} bytes exceeds ${MAX_FRAME_BYTES}`, 'too_big');
  let value: unknown;
  try {
    value = unpack(frame);
  } catch (e) {
    throw new ProtocolError(`undecodable frame: ${(e as Error).message}`, 'malformed');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ProtocolError('frame is not a map', 'malformed');
  return value as Record<string, unknown>;
}

const isVersion = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Bounds keep a hostile agent from storing unbounded data through its inventory. */
export const MAX_INVENTORY_TARGETS = 1024;
export const MAX_INVENTORY_ITEMS = 16384;

function isInventory(v: unknown): v is Inventory {
  if (!isRecord(v)) return false;
  const entries = Object.entries(v);
  if (entries.length > MAX_INVENTORY_TARGETS) return false;
  return entries.every(([, t]) => isRecord(t) && Array.isArray(t.tpg_luns) && t.tpg_luns.length <= MAX_INVENTORY_ITEMS && t.tpg_luns.every(isVersion)
    && isStringArray(t.local_acls) && t.local_acls.length <= MAX_INVENTORY_ITEMS);
}

function bad(what: string): never {
  throw new ProtocolError(what, 'malformed');
}

function commandFrame<T>(decode: () => T): T {
  try {
    return decode();
  } catch (e) {
    if (e instanceof CommandArgsError) bad(e.message);
    throw e;
  }
}

/** Decodes and shape-checks a frame sent by an agent. */
export function decodeAgentMessage(frame: Uint8Array): AgentMessage {
  const m = decodeObject(frame);
  switch (m.type) {
    case 'hello':
      if (typeof m.agent_version !== 'string') bad('hello.agent_version must be a string');
      if (!isVersion(m.applied_version)) bad('hello.applied_version must be a non-negative integer');
      if (!isStringArray(m.served_targets)) bad('hello.served_targets must be a string array');
      if (m.token !== undefined && typeof m.token !== 'string') bad('hello.token must be a string');
      if (m.inventory !== undefined && !isInventory(m.inventory)) bad('hello.inventory must map target IQNs to {tpg_luns, local_acls}');
      return m as unknown as HelloMessage;
    case 'ack':
      if (!isVersion(m.version)) bad('ack.version must be a non-negative integer');
      return m as unknown as AckMessage;
    case 'nack':
      if (!isVersion(m.version)) bad('nack.version must be a non-negative integer');
      if (typeof m.error !== 'string') bad('nack.error must be a string');
      return m as unknown as NackMessage;
    case 'status':
      if (!isRecord(m.status)) bad('status.status must be a map');
      if (m.served_targets !== undefined && !isStringArray(m.served_targets)) bad('status.served_targets must be a string array');
      if (m.inventory !== undefined && !isInventory(m.inventory)) bad('status.inventory must map target IQNs to {tpg_luns, local_acls}');
      return m as unknown as StatusMessage;
    case 'result':
      return commandFrame(() => decodeResult(m));
    case 'request':
      return commandFrame(() => decodeRequest(m));
    default:
      return bad(`unknown agent message type ${JSON.stringify(m.type)}`);
  }
}

/** Decodes and shape-checks a frame sent by the gateway (the policy itself is validated by the agent). */
export function decodeGatewayMessage(frame: Uint8Array, unpack?: Unpack): GatewayMessage {
  const m = decodeObject(frame, unpack);
  switch (m.type) {
    case 'snapshot': {
      const p = m.policy;
      if (!isRecord(p) || !isVersion(p.version) || !isRecord(p.targets)) bad('snapshot.policy must have version and targets');
      if (p.fleet_epoch !== undefined && typeof p.fleet_epoch !== 'string') bad('snapshot.policy.fleet_epoch must be a string');
      return m as unknown as SnapshotMessage;
    }
    case 'ping':
      return m as unknown as PingMessage;
    case 'command':
      return commandFrame(() => decodeCommand(m));
    case 'reply':
      return commandFrame(() => decodeReply(m));
    default:
      return bad(`unknown gateway message type ${JSON.stringify(m.type)}`);
  }
}
