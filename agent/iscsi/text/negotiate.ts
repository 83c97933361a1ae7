// RFC 7143 §6.2–§6.6 and §13: operational parameter negotiation (lists, min/max ranges, AND/OR booleans,
// declarations), with NotUnderstood for unknown keys, Irrelevant and Reject as the RFC prescribes.
import { KEYS, TARGET_DEFAULTS, TARGET_LIMITS, type KeyDef } from './keys.js';
import { parseNumber, type KeyValue } from './codec.js';

/** The negotiated operational parameters of a session/connection, as numbers and booleans. */
export interface SessionParams {
  headerDigest: boolean;
  dataDigest: boolean;
  /** The initiator's declared MaxRecvDataSegmentLength: the largest data segment we may send. */
  initiatorMaxRecvDataSegmentLength: number;
  /** Ours: the largest data segment the initiator may send us. */
  targetMaxRecvDataSegmentLength: number;
  maxConnections: number;
  initialR2T: boolean;
  immediateData: boolean;
  maxBurstLength: number;
  firstBurstLength: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  maxOutstandingR2T: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
  errorRecoveryLevel: number;
}

export class NegotiationError extends Error {}

/** Builds the target's offer: our defaults, overridden by the TPG's saveconfig parameters, bounded by what we implement. */
export function targetOffer(tpgParameters: Readonly<Record<string, string>>): Record<string, string> {
  const offer: Record<string, string> = { ...TARGET_DEFAULTS };
  for (const [k, v] of Object.entries(tpgParameters)) {
    const def = KEYS.get(k);
    // LIO's MaxXmitDataSegmentLength caps what we send, whatever the initiator declares.
    if (k === 'MaxXmitDataSegmentLength' && parseNumber(v) !== undefined) offer[k] = v;
    if (!def || def.kind === 'security' || def.kind === 'declarative' && k !== 'MaxRecvDataSegmentLength') continue;
    offer[k] = v;
  }
  for (const [k, limit] of Object.entries(TARGET_LIMITS)) {
    const def = KEYS.get(k)!;
    if (def.kind === 'min') offer[k] = String(Math.min(parseNumber(offer[k] ?? limit) ?? Number(limit), Number(limit)));
    else offer[k] = limit;
  }
  return offer;
}

const BOOL = new Set(['Yes', 'No']);

export class Negotiator {
  /** Negotiated or declared values so far (RFC defaults until negotiated). */
  readonly values = new Map<string, string>();
  private readonly seen = new Set<string>();
  /** The value first offered for each key: libiscsi repeats InitiatorName/TargetName/SessionType unchanged after AuthMethod=None. */
  private readonly offered = new Map<string, string>();
  discovery = false;

  constructor(private readonly offer: Readonly<Record<string, string>>, private readonly leading = true) {
    for (const [name, def] of KEYS) if (def.def !== undefined) this.values.set(name, def.def);
    // Our own declaration takes effect whatever the initiator says.
    this.values.set('TargetMaxRecvDataSegmentLength', offer.MaxRecvDataSegmentLength ?? '8192');
  }

  /**
   * Answers the operational keys of one request. Security keys are skipped (the caller handles them);
   * returns the response pairs in the order the keys arrived.
   */
  negotiate(pairs: readonly KeyValue[], opts: { fullFeature?: boolean } = {}): KeyValue[] {
    const out: KeyValue[] = [];
    const st = pairs.find(([k]) => k === 'SessionType');
    if (st) this.discovery = st[1] === 'Discovery';
    for (const [key, value] of pairs) {
      const def = KEYS.get(key);
      if (def?.kind === 'security') continue;
      if (!def) {
        out.push([key, 'NotUnderstood']);
        continue;
      }
      if (value === 'NotUnderstood' || value === 'Irrelevant' || value === 'Reject') continue; // answers to our declarations
      if (this.seen.has(key) && !opts.fullFeature) {
        // An identical repeat of a declaration restates it (libiscsi does this after AuthMethod=None);
        // repeating a negotiated key, or changing a declaration, is an initiator error (RFC 7143 §6.2).
        if (def.kind === 'declarative' && this.offered.get(key) === value) continue;
        throw new NegotiationError(`key ${key} negotiated twice`);
      }
      this.seen.add(key);
      this.offered.set(key, value);
      const answer = this.answer(def, value, opts.fullFeature ?? false);
      if (answer !== undefined) out.push([key, answer]);
    }
    // FirstBurstLength is Irrelevant when InitialR2T=Yes and ImmediateData=No (RFC 7143 §13.14), and never above MaxBurstLength.
    const fbl = out.findIndex(([k]) => k === 'FirstBurstLength');
    if (fbl >= 0 && out[fbl]![1] !== 'Reject' && out[fbl]![1] !== 'Irrelevant') {
      if (this.values.get('InitialR2T') === 'Yes' && this.values.get('ImmediateData') === 'No') out[fbl] = ['FirstBurstLength', 'Irrelevant'];
      else {
        const v = Math.min(Number(this.values.get('FirstBurstLength')), Number(this.values.get('MaxBurstLength')));
        this.values.set('FirstBurstLength', String(v));
        out[fbl] = ['FirstBurstLength', String(v)];
      }
    }
    return out;
  }

  /** The negotiated result for one offered key, or undefined when nothing is to be answered. */
  private answer(def: KeyDef, value: string, fullFeature: boolean): string | undefined {
    if (def.targetOnly) return 'Reject';
    if (def.fullFeatureOnly !== fullFeature && def.fullFeatureOnly) return 'Irrelevant';
    if (fullFeature && !def.fullFeatureOnly) return 'Reject'; // operational keys cannot be renegotiated in FFP here
    if (def.leadingOnly && !this.leading && def.kind !== 'declarative') return 'Irrelevant';
    if (def.normalOnly && this.discovery) return 'Irrelevant';
    const ours = this.offer[def.name] ?? def.def;
    switch (def.kind) {
      case 'declarative': {
        if (def.name === 'MaxRecvDataSegmentLength') {
          const n = parseNumber(value);
          if (n === undefined || n < def.min! || n > def.max!) return 'Reject';
          this.values.set(def.name, String(n));
          return undefined; // our own value is declared separately (declarations())
        }
        if (def.name === 'SessionType' && value !== 'Normal' && value !== 'Discovery') return 'Reject';
        if (def.name === 'IFMarkInt' || def.name === 'OFMarkInt') return 'Irrelevant';
        this.values.set(def.name, value);
        return undefined;
      }
      case 'list': {
        const supported = (ours ?? '').split(',').map((s) => s.trim());
        const offered = value.split(',').map((s) => s.trim());
        if (offered.some((s) => s === '' || s.length > 255)) return 'Reject';
        const pick = offered.find((o) => supported.includes(o));
        if (!pick) return 'Reject';
        this.values.set(def.name, pick);
        return pick;
      }
      case 'min':
      case 'max': {
        const n = parseNumber(value);
        if (n === undefined || n < def.min! || n > def.max!) return 'Reject';
        const o = parseNumber(ours ?? '') ?? n;
        const r = def.kind === 'min' ? Math.min(n, o) : Math.max(n, o);
        this.values.set(def.name, String(r));
        return String(r);
      }
      case 'and':
      case 'or': {
        if (!BOOL.has(value)) return 'Reject';
        const a = value === 'Yes';
        const b = ours === 'Yes';
        const r = (def.kind === 'and' ? a && b : a || b) ? 'Yes' : 'No';
        this.values.set(def.name, r);
        return r;
      }
      default:
        return undefined;
    }
  }

  /** The target's own declarations, sent once per connection in the operational stage. */
  declarations(): KeyValue[] {
    return [['MaxRecvDataSegmentLength', this.values.get('TargetMaxRecvDataSegmentLength')!]];
  }

  params(): SessionParams {
    const v = (k: string) => this.values.get(k)!;
    const num = (k: string) => Number(v(k));
    const yes = (k: string) => v(k) === 'Yes';
    return {
      headerDigest: v('HeaderDigest') === 'CRC32C',
      dataDigest: v('DataDigest') === 'CRC32C',
      initiatorMaxRecvDataSegmentLength: Math.min(num('MaxRecvDataSegmentLength'), parseNumber(this.offer.MaxXmitDataSegmentLength ?? '') ?? Infinity),
      targetMaxRecvDataSegmentLength: num('TargetMaxRecvDataSegmentLength'),
      maxConnections: num('MaxConnections'),
      initialR2T: yes('InitialR2T'),
      immediateData: yes('ImmediateData'),
      maxBurstLength: num('MaxBurstLength'),
      firstBurstLength: Math.min(num('FirstBurstLength'), num('MaxBurstLength')),
      defaultTime2Wait: num('DefaultTime2Wait'),
      defaultTime2Retain: num('DefaultTime2Retain'),
      maxOutstandingR2T: num('MaxOutstandingR2T'),
      dataPDUInOrder: yes('DataPDUInOrder'),
      dataSequenceInOrder: yes('DataSequenceInOrder'),
      errorRecoveryLevel: num('ErrorRecoveryLevel'),
    };
  }
}
