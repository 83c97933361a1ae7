// Outpost control commands: typed requests from the gateway to one agent over the control WebSocket, each
// answered by one result frame with the same id (beside the policy frames of control-protocol.ts).
// A closed set of operations with checked arguments — never a shell line — so a compromised gateway can do
// no more than these verbs. Plain data, Uint8Array-free; both sides validate what they receive.

/** What migration and the snapshot routes need; each op's arguments are checked by `checkCommandArgs`. */
export const COMMAND_OPS = [
  'ping', // echo: proves the channel (tests, liveness before a migration)
  'lun.describe', // the backstore behind TARGET/LUN: plugin, bucket location, identity, TPG, ALUA group
  'alua.set', // ALUA access state of the group a TARGET/LUN's TPG uses (SPC-4 §5.15)
  'standby.open', // B: open the volume as a reader, export the same IQN/LUN/identity through its own TPG
  'sessions.count', // logged-in sessions to TARGET through TPG (is the initiator's new path up?)
  'dirty.report', // dirty bytes and upload counters of an object LUN
  'flush', // upload what is dirty now (serving continues)
  'handover', // A: last upload, final root, release the lease; returns the PR state
  'takeover', // B: become the writer (next epoch), load PR state, go active/optimized
  'reexport', // A after the cut-over: export the handed-over LUN again, a reader in the given ALUA state
  'unexport', // remove a TPG LUN (and what only it used) from this agent
  'upload.start', // A: upload a fileio/block LUN into a new object volume at the destination's bucket/prefix
  'upload.abort', // A: stop that upload (rollback); the LUN serves on as before
  'snapshot.create',
  'snapshot.list',
  'snapshot.delete',
] as const;
export type CommandOp = (typeof COMMAND_OPS)[number];

/**
 * What `upload.start` (and `volume` of POST /v1/migrations) may set of the new object volume: its location
 * and tuning at the destination site, never its size or identity (those are the source LUN's).
 */
export const UPLOAD_VOLUME_KEYS = ['bucket', 'prefix', 'endpoint', 'region', 'force_path_style', 'cache_size', 'read_timeout_ms', 'upload_concurrency',
  'commit_interval_ms', 'retry_max_ms', 'upload_delay_ms', 'write_timeout_ms', 'lease_ms', 'lease_settle_ms'] as const;

/** Longest an answer may be awaited unless the caller says otherwise (a flush of a big cache takes longer). */
export const DEFAULT_COMMAND_TIMEOUT_MS = 15_000;

export interface CommandMessage {
  readonly type: 'command';
  /** Unique per request on one socket; the result carries it back. */
  readonly id: string;
  readonly op: CommandOp;
  readonly args: Readonly<Record<string, unknown>>;
}

export interface ResultMessage {
  readonly type: 'result';
  readonly id: string;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class CommandArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandArgsError';
  }
}

type Kind = 'string' | 'int' | 'bool' | 'object' | 'state';
/** [field, kind, required]. Unknown fields are refused, so a typo never silently means the default. */
type Spec = readonly (readonly [string, Kind, boolean])[];

const TARGET_LUN: Spec = [['target', 'string', true], ['lun', 'int', true]];
const NAMED_SNAPSHOT: Spec = [['backstore', 'string', true], ['name', 'string', true]];

const SPECS: Record<CommandOp, Spec> = {
  ping: [['echo', 'string', false]],
  'lun.describe': TARGET_LUN,
  'alua.set': [...TARGET_LUN, ['state', 'state', true]],
  'standby.open': [...TARGET_LUN, ['tpg', 'int', true], ['backstore', 'object', true], ['portal', 'string', false], ['group_id', 'int', true]],
  'sessions.count': [['target', 'string', true], ['tpg', 'int', true]],
  'dirty.report': TARGET_LUN,
  flush: TARGET_LUN,
  handover: TARGET_LUN,
  takeover: [...TARGET_LUN, ['pr', 'object', false], ['from_tpg', 'int', false]],
  reexport: [...TARGET_LUN, ['state', 'state', true]],
  unexport: [...TARGET_LUN, ['tpg', 'int', false]],
  'upload.start': [...TARGET_LUN, ['volume', 'object', true]],
  'upload.abort': TARGET_LUN,
  'snapshot.create': NAMED_SNAPSHOT,
  'snapshot.list': [['backstore', 'string', true]],
  'snapshot.delete': NAMED_SNAPSHOT,
};

/** ALUA access states by name (SPC-4 table 154), as the REST API and the shell spell them. */
export const ALUA_STATE_NAMES = {
  'active/optimized': 0x0,
  'active/non-optimized': 0x1,
  standby: 0x2,
  unavailable: 0x3,
  transitioning: 0xf,
} as const;
export type AluaStateName = keyof typeof ALUA_STATE_NAMES;

const NAME_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;

function checkValue(op: string, field: string, kind: Kind, v: unknown): void {
  const bad = (what: string): never => {
    throw new CommandArgsError(`${op}: ${field} must be ${what}`);
  };
  switch (kind) {
    case 'string':
      if (typeof v !== 'string' || v.length === 0 || v.length > 1024) bad('a non-empty string of at most 1024 characters');
      return;
    case 'int':
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > 65535) bad('an integer in 0..65535');
      return;
    case 'bool':
      if (typeof v !== 'boolean') bad('true or false');
      return;
    case 'object':
      if (!isRecord(v)) bad('a map');
      return;
    case 'state':
      if (typeof v !== 'string' || !(v in ALUA_STATE_NAMES)) bad(`one of ${Object.keys(ALUA_STATE_NAMES).join(', ')}`);
      return;
  }
}

/** Checks an op's arguments in place; throws CommandArgsError naming the first problem. */
export function checkCommandArgs(op: unknown, args: unknown): asserts args is Record<string, unknown> {
  if (typeof op !== 'string' || !(COMMAND_OPS as readonly string[]).includes(op)) throw new CommandArgsError(`unknown command ${JSON.stringify(op)}; known: ${COMMAND_OPS.join(', ')}`);
  if (!isRecord(args)) throw new CommandArgsError(`${op}: arguments must be a map`);
  checkSpec(op, SPECS[op as CommandOp], args);
  // snapshot names end up on a shell line of the agent: nothing that could split or quote it
  if (op.startsWith('snapshot.')) {
    for (const f of ['backstore', 'name'] as const) {
      const v = args[f];
      if (typeof v === 'string' && !NAME_RE.test(v)) throw new CommandArgsError(`${op}: ${f} ${JSON.stringify(v)} may hold only letters, digits and _ . : @ -`);
    }
  }
}

function checkSpec(op: string, spec: Spec, args: Record<string, unknown>): void {
  const known = new Set(spec.map(([f]) => f));
  for (const k of Object.keys(args)) if (!known.has(k)) throw new CommandArgsError(`${op}: unknown argument ${JSON.stringify(k)}`);
  for (const [field, kind, required] of spec) {
    if (args[field] === undefined) {
      if (required) throw new CommandArgsError(`${op}: ${field} is required`);
      continue;
    }
    checkValue(op, field, kind, args[field]);
  }
}

/** A call frame in either direction (command, request): an id, an op, a map of arguments. */
function checkCall(m: Record<string, unknown>, what: string): void {
  if (typeof m.id !== 'string' || m.id.length === 0 || m.id.length > 64) throw new CommandArgsError(`${what}.id must be a string of 1..64 characters`);
  if (typeof m.op !== 'string') throw new CommandArgsError(`${what}.op must be a string`);
  if (!isRecord(m.args)) throw new CommandArgsError(`${what}.args must be a map`);
}

/** An answer frame in either direction (result, reply): the call's id, ok, and an error string if any. */
function checkAnswer(m: Record<string, unknown>, what: string): void {
  if (typeof m.id !== 'string' || m.id.length === 0 || m.id.length > 64) throw new CommandArgsError(`${what}.id must be a string of 1..64 characters`);
  if (typeof m.ok !== 'boolean') throw new CommandArgsError(`${what}.ok must be a boolean`);
  if (m.error !== undefined && typeof m.error !== 'string') throw new CommandArgsError(`${what}.error must be a string`);
}

/** Shape check of a command frame (the gateway's); the op's arguments are checked by the agent's handler. */
export function decodeCommand(m: Record<string, unknown>): CommandMessage {
  checkCall(m, 'command');
  return m as unknown as CommandMessage;
}

/** Shape check of a result frame (the agent's). */
export function decodeResult(m: Record<string, unknown>): ResultMessage {
  checkAnswer(m, 'result');
  return m as unknown as ResultMessage;
}

// ---- the other direction: typed requests from an agent to the gateway (its shell's `migrate`) ----

/**
 * What an agent may ask of the gateway: start a migration it takes part in, and follow one. The gateway
 * checks who asks (agent/control/link.ts sends; gateway/migrations.ts answers).
 */
export const AGENT_REQUEST_OPS = ['migration.start', 'migration.get'] as const;
export type AgentRequestOp = (typeof AGENT_REQUEST_OPS)[number];

export interface AgentRequestMessage {
  readonly type: 'request';
  readonly id: string;
  readonly op: AgentRequestOp;
  readonly args: Readonly<Record<string, unknown>>;
}

/** The gateway's answer to one request (same id). */
export interface ReplyMessage {
  readonly type: 'reply';
  readonly id: string;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: string;
}

const REQUEST_SPECS: Record<AgentRequestOp, Spec> = {
  'migration.start': [...TARGET_LUN, ['from', 'string', false], ['to', 'string', true], ['to_portal', 'string', false], ['volume', 'object', false]],
  'migration.get': [['id', 'string', true]],
};

/** Checks a request's op and arguments; throws CommandArgsError naming the first problem. */
export function checkRequestArgs(op: unknown, args: unknown): asserts args is Record<string, unknown> {
  if (typeof op !== 'string' || !(AGENT_REQUEST_OPS as readonly string[]).includes(op)) throw new CommandArgsError(`unknown request ${JSON.stringify(op)}; known: ${AGENT_REQUEST_OPS.join(', ')}`);
  if (!isRecord(args)) throw new CommandArgsError(`${op}: arguments must be a map`);
  checkSpec(op, REQUEST_SPECS[op as AgentRequestOp], args);
}

/** Shape check of a request frame (the agent's); its arguments are checked by the gateway's handler. */
export function decodeRequest(m: Record<string, unknown>): AgentRequestMessage {
  checkCall(m, 'request');
  return m as unknown as AgentRequestMessage;
}

/** Shape check of a reply frame (the gateway's). */
export function decodeReply(m: Record<string, unknown>): ReplyMessage {
  checkAnswer(m, 'reply');
  return m as unknown as ReplyMessage;
}
