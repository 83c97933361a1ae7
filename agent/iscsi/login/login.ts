// RFC 7143 §6 (login phase), §11.12–§11.13 (Login Request/Response), §12 (authentication):
// one connection's login — stages, security (None/CHAP), operational negotiation, TSIH and reinstatement.
import { LoginStatus, Opcode, Stage } from '../pdu/constants.js';
import type { LoginRequest, LoginResponse } from '../pdu/types.js';
import { parseText, serializeText, TextFormatError, type KeyValue } from '../text/codec.js';
import { Negotiator, NegotiationError, targetOffer, type SessionParams } from '../text/negotiate.js';
import { ChapAuthenticator, ChapFailure } from './chap.js';
import { admitNormal, hasChap, LoginError, type Admission } from './authorize.js';
import { checkValueLengths, firstSegment, LoginBudget } from './limits.js';
import { remoteAddress } from './throttle.js';
import { cmdsnDepth, type ServerContext } from '../context.js';
import { joinViews } from '../../lib/bytes.js';
import { serialAdd } from '../../lib/serial.js';
import type { Session } from '../session.js';
import type { PortalAddress } from '../target-registry.js';
import type { Nexus } from '../../scsi/port.js';

/** What the login phase needs from its connection. */
export interface LoginHost {
  readonly ctx: ServerContext;
  readonly local: PortalAddress;
  readonly remote: string;
  statSN: number;
  sendLogin(h: LoginResponse, data: Buffer): void;
  /** Sends a final error response (after `delayMs`, when throttled) and closes the connection. */
  failLogin(h: LoginResponse, reason: string, o?: { delayMs?: number; quiet?: boolean }): void;
  enterFullFeature(session: Session, cid: number, params: SessionParams): void;
}

function buildNexus(initiatorName: string, isid: string, targetName: string, tpgt: number, relativePortId = tpgt): Nexus {
  const initiatorPortName = `${initiatorName},i,0x${isid}`;
  const targetPortName = `${targetName},t,0x${tpgt.toString(16).padStart(4, '0')}`;
  return { id: `${initiatorPortName}|${targetPortName}`, initiatorName, isid, initiatorPortName, targetName, tpgt, targetPortName, relativeTargetPortId: relativePortId };
}

export class LoginPhase {
  private first?: LoginRequest;
  private partial: Buffer[] = [];
  private negotiator?: Negotiator;
  private initiatorName = '';
  private targetName = '';
  private discovery = false;
  private admission?: Admission;
  private existing?: Session; // TSIH != 0: the session this connection joins
  private authMethod?: 'None' | 'CHAP';
  private chap?: ChapAuthenticator;
  private authRequired = false;
  private authenticated = false;
  private declared = false;
  private tpgtSent = false;
  private stage: number = Stage.SECURITY;
  private cmdSN = 0;
  private readonly budget = new LoginBudget();
  /** Response text not yet sent: the initiator fetches it with empty Login Requests (the C bit of RFC 7143 §11.13). */
  private continuation?: { rest: Buffer; transit: boolean; nsg: number };
  private failed = false;

  constructor(private readonly host: LoginHost) {}

  handle(req: LoginRequest, data: Buffer[]): void {
    if (this.failed) return; // the login failed; its answer (delayed when throttled) is on its way
    try {
      this.step(req, data);
    } catch (e) {
      const status = e instanceof LoginError ? e.status
        : e instanceof ChapFailure ? (e.malformed ? LoginStatus.INITIATOR_ERROR : LoginStatus.AUTHENTICATION_FAILURE)
        : e instanceof TextFormatError || e instanceof NegotiationError ? LoginStatus.INITIATOR_ERROR
        : LoginStatus.TARGET_ERROR;
      if (status === LoginStatus.TARGET_ERROR) this.host.ctx.log.error({ err: e }, 'login failed');
      if (status === LoginStatus.AUTHENTICATION_FAILURE) this.host.ctx.log.info({ initiator: this.initiatorName, target: this.targetName || undefined, remote: this.host.remote }, 'iSCSI CHAP authentication failed');
      let delayMs = 0;
      if (e instanceof ChapFailure && !e.malformed) {
        // A wrong guess: count it, and make the answer wait out the backoff it earned.
        const { backoffMs, failures } = this.host.ctx.throttle.fail(this.initiatorName, this.address);
        delayMs = backoffMs;
        this.host.ctx.log.warn({ initiator: this.initiatorName, remote: this.host.remote, failures, backoffMs, reason: e.message }, 'iSCSI CHAP failure: backing off');
      }
      this.failed = true;
      this.host.failLogin(this.response(req, { status, transit: false, nsg: 0 }), (e as Error).message, { delayMs, quiet: e instanceof LoginError && e.quiet });
    }
  }

  private get address(): string {
    return remoteAddress(this.host.remote);
  }

  private step(req: LoginRequest, data: Buffer[]): void {
    if (!this.first) this.begin(req);
    else if (req.isid !== this.first.isid || req.tsih !== this.first.tsih || req.cid !== this.first.cid) {
      throw new LoginError(LoginStatus.INITIATOR_ERROR, 'ISID, TSIH or CID changed during login');
    }
    if (req.csg === 2 || req.csg === Stage.FULL_FEATURE) throw new LoginError(LoginStatus.INITIATOR_ERROR, `invalid CSG ${req.csg}`);
    if (req.csg < this.stage) throw new LoginError(LoginStatus.INITIATOR_ERROR, 'login stage went backwards');
    if (req.transit && (req.nsg <= req.csg || req.nsg === 2)) throw new LoginError(LoginStatus.INITIATOR_ERROR, `invalid NSG ${req.nsg}`);
    if (req.transit && req.cont) throw new LoginError(LoginStatus.INITIATOR_ERROR, 'T and C both set');
    const dataLength = data.reduce((n, d) => n + d.length, 0);

    if (this.continuation) {
      // The initiator fetches the rest of our split response with empty requests.
      if (dataLength > 0 || req.cont) throw new LoginError(LoginStatus.INITIATOR_ERROR, 'Login Request with text while a response is continued');
      const c = this.continuation;
      this.continuation = undefined;
      return this.emit(req, c.rest, c.transit, c.nsg);
    }

    // Text spanning several PDUs (C bit): gather, acknowledge with an empty response.
    this.budget.addBytes(dataLength);
    for (const d of data) this.partial.push(d);
    if (req.cont) {
      this.host.sendLogin(this.response(req, { transit: false, nsg: 0 }), Buffer.alloc(0));
      return;
    }
    const pairs = parseText(joinViews(this.partial));
    this.partial = [];
    this.budget.addKeys(pairs.length);
    checkValueLengths(pairs);
    const keys = new Map(pairs);
    const out: KeyValue[] = [];
    this.host.ctx.log.debug({ remote: this.host.remote, csg: req.csg, nsg: req.nsg, transit: req.transit, keys: pairs.filter(([k]) => !k.startsWith('CHAP_')).map(([k, v]) => `${k}=${v}`) }, 'login request');

    if (!this.negotiator) this.identify(req, keys, out);
    if (req.csg === Stage.OPERATIONAL && this.stage === Stage.SECURITY) {
      // Skipping or leaving the security stage: only allowed once authenticated or when auth is not required.
      if (!this.authenticated) {
        if (this.authRequired || this.authMethod === 'CHAP') throw new LoginError(LoginStatus.AUTHENTICATION_FAILURE, 'authentication required');
        this.authenticated = true;
      }
    }
    this.stage = req.csg;

    if (req.csg === Stage.SECURITY) this.security(keys, out);
    else if ([...keys.keys()].some((k) => k === 'AuthMethod' || k.startsWith('CHAP_'))) {
      throw new LoginError(LoginStatus.INITIATOR_ERROR, 'security keys outside the security stage');
    }
    out.push(...this.negotiator!.negotiate(pairs));
    if (!this.declared && (req.csg === Stage.OPERATIONAL || (req.transit && req.nsg === Stage.FULL_FEATURE))) {
      out.push(...this.negotiator!.declarations());
      this.declared = true;
    }

    let transit = req.transit;
    if (transit && req.csg === Stage.SECURITY && !this.authenticated) {
      if (this.authMethod === undefined && !this.authRequired) this.authenticated = true;
      else if (this.authMethod === undefined) throw new LoginError(LoginStatus.AUTHENTICATION_FAILURE, 'authentication required');
      else transit = false; // CHAP still in progress: stay in the security stage
    }
    this.emit(req, serializeText(out), transit, transit ? req.nsg : 0);
  }

  /** Sends response text, split into 8192-byte segments with C=1 when longer; the last one carries T/NSG. */
  private emit(req: LoginRequest, text: Buffer, transit: boolean, nsg: number): void {
    const [now, rest] = firstSegment(text);
    if (rest.length > 0) {
      this.continuation = { rest, transit, nsg };
      const h = this.response(req, { transit: false, nsg: 0 });
      h.cont = true;
      this.host.sendLogin(h, now);
      return;
    }
    if (transit && nsg === Stage.FULL_FEATURE) return this.complete(req, now);
    this.host.sendLogin(this.response(req, { transit, nsg }), now);
  }

  /** First PDU: version, identity keys, target lookup, authorization. */
  private begin(req: LoginRequest): void {
    this.first = req;
    this.cmdSN = req.cmdSN;
    this.host.statSN = req.expStatSN;
    if (req.versionMin > 0) throw new LoginError(LoginStatus.UNSUPPORTED_VERSION, `version ${req.versionMin}..${req.versionMax} not supported`);
    if (this.host.ctx.closing) throw new LoginError(LoginStatus.SERVICE_UNAVAILABLE, 'target is shutting down');
  }

  private identify(req: LoginRequest, keys: Map<string, string>, out: KeyValue[]): void {
    const { ctx, local } = this.host;
    const initiatorName = keys.get('InitiatorName');
    if (!initiatorName) throw new LoginError(LoginStatus.MISSING_PARAMETER, 'InitiatorName missing');
    const type = keys.get('SessionType') ?? 'Normal';
    if (type !== 'Normal' && type !== 'Discovery') throw new LoginError(LoginStatus.SESSION_TYPE_NOT_SUPPORTED, `SessionType ${type}`);
    this.initiatorName = initiatorName;
    this.discovery = type === 'Discovery';
    let params: Record<string, string> = {};
    if (this.discovery) {
      const auth = ctx.registry.discoveryAuth();
      this.authRequired = auth.enabled;
      this.admission = undefined;
      this.chap = auth.enabled || hasChap(auth.chap) ? new ChapAuthenticator(auth.chap) : undefined;
    } else {
      const targetName = keys.get('TargetName');
      if (!targetName) throw new LoginError(LoginStatus.MISSING_PARAMETER, 'TargetName missing');
      this.targetName = targetName;
      this.admission = admitNormal(ctx.registry, targetName, initiatorName, local);
      // LIO's per-ACL authentication: an ACL with CHAP credentials requires CHAP whatever the TPG's
      // authentication attribute says (admitNormal folds that into authRequired).
      this.authRequired = this.admission.authRequired;
      this.chap = this.authRequired || hasChap(this.admission.chap) ? new ChapAuthenticator(this.admission.chap) : undefined;
      params = { ...this.admission.tpg.parameters };
    }
    if (req.tsih !== 0) {
      const s = ctx.sessions.get(req.tsih);
      if (!s || s.initiatorName !== initiatorName || s.isid !== req.isid || s.targetName !== (this.discovery ? '' : this.targetName)) {
        throw new LoginError(LoginStatus.SESSION_DOES_NOT_EXIST, `no session with TSIH ${req.tsih}`);
      }
      if (!s.connections.has(req.cid) && s.connections.size >= s.params.maxConnections) {
        throw new LoginError(LoginStatus.TOO_MANY_CONNECTIONS, `session ${req.tsih} has ${s.connections.size} connections`);
      }
      this.existing = s;
    }
    this.negotiator = new Negotiator(targetOffer(params), req.tsih === 0);
    if (!this.discovery && !this.tpgtSent) {
      out.push(['TargetPortalGroupTag', String(this.admission!.tpg.tag)]);
      this.tpgtSent = true;
    }
  }

  private security(keys: Map<string, string>, out: KeyValue[]): void {
    const am = keys.get('AuthMethod');
    if (am !== undefined) {
      if (this.authMethod !== undefined) throw new LoginError(LoginStatus.INITIATOR_ERROR, 'AuthMethod negotiated twice');
      const supported = this.authRequired ? ['CHAP'] : this.chap ? ['None', 'CHAP'] : ['None'];
      const pick = am.split(',').map((s) => s.trim()).find((m) => supported.includes(m));
      if (!pick) {
        out.push(['AuthMethod', 'Reject']);
        throw new LoginError(LoginStatus.AUTHENTICATION_FAILURE, `AuthMethod ${am} not acceptable`);
      }
      this.authMethod = pick as 'None' | 'CHAP';
      out.push(['AuthMethod', pick]);
      if (pick === 'None') this.authenticated = true;
    }
    const chapKeys = [...keys.keys()].filter((k) => k.startsWith('CHAP_'));
    if (chapKeys.length === 0) return;
    if (this.authMethod !== 'CHAP' || !this.chap) throw new LoginError(LoginStatus.INITIATOR_ERROR, 'CHAP keys without AuthMethod=CHAP');
    if (keys.has('CHAP_R')) {
      // Inside a backoff window a guess is not even evaluated: parallel connections gain nothing.
      const { waitMs, refused } = this.host.ctx.throttle.check(this.initiatorName, this.address);
      if (waitMs > 0) {
        // A flood is logged once per window (and every 1000th), not once per attempt.
        const level = refused === 1 || refused % 1000 === 0 ? 'warn' : 'debug';
        this.host.ctx.log[level]({ initiator: this.initiatorName, remote: this.host.remote, waitMs, refused }, 'iSCSI login refused: failed-login backoff');
        throw new LoginError(LoginStatus.SERVICE_UNAVAILABLE, `too many failed logins; retry in ${Math.ceil(waitMs / 1000)} s`, level === 'debug');
      }
    }
    out.push(...this.chap.step(keys));
    if (this.chap.done) this.authenticated = true;
  }

  /** Final response: create or join the session, then switch the connection to full feature phase. */
  private complete(req: LoginRequest, text: Buffer): void {
    const { ctx } = this.host;
    if (!this.authenticated) throw new LoginError(LoginStatus.AUTHENTICATION_FAILURE, 'not authenticated');
    let params = this.negotiator!.params();
    let session = this.existing;
    const replaced = session?.connections.get(req.cid);
    if (session) {
      // A connection joining or reinstating (same CID) in an existing session keeps the session-wide values.
      params = { ...session.params, headerDigest: params.headerDigest, dataDigest: params.dataDigest,
        initiatorMaxRecvDataSegmentLength: params.initiatorMaxRecvDataSegmentLength, targetMaxRecvDataSegmentLength: params.targetMaxRecvDataSegmentLength };
    } else {
      const tpg = this.admission?.tpg;
      // Session reinstatement (RFC 7143 §6.3.5): same initiator port and target port, TSIH 0 → the old session ends.
      if (!this.discovery) ctx.sessions.find(this.initiatorName, req.isid, this.targetName, tpg?.tag)?.end('session reinstated');
      session = ctx.sessions.create({
        type: this.discovery ? 'Discovery' : 'Normal',
        initiatorName: this.initiatorName,
        isid: req.isid,
        targetName: this.discovery ? '' : this.targetName,
        tpg,
        nexus: tpg ? buildNexus(this.initiatorName, req.isid, this.targetName, tpg.tag, tpg.relativePortId) : undefined,
        luns: this.admission?.luns,
        params,
        cmdSN: this.cmdSN,
        cmdsnDepth: cmdsnDepth(tpg?.attributes),
      });
      ctx.log.info({ tsih: session.tsih, initiator: this.initiatorName, target: this.targetName || undefined, type: session.type, remote: this.host.remote }, 'iSCSI login');
    }
    const h = this.response(req, { transit: true, nsg: Stage.FULL_FEATURE });
    h.tsih = session.tsih;
    h.expCmdSN = session.expCmdSN;
    h.maxCmdSN = session.maxCmdSN;
    if (this.chap?.done) ctx.throttle.succeed(this.initiatorName, this.address);
    this.host.sendLogin(h, text);
    this.host.enterFullFeature(session, req.cid, params);
    // Connection reinstatement (RFC 7143 §6.3.4): the new connection took the CID, so the session outlives the old one.
    replaced?.destroy('connection reinstated');
  }

  private response(req: LoginRequest, o: { status?: number; transit: boolean; nsg: number }): LoginResponse {
    const status = o.status ?? 0;
    return {
      opcode: Opcode.LOGIN_RESPONSE, immediate: false, itt: req.itt,
      transit: o.transit, cont: false, csg: req.csg, nsg: o.transit ? o.nsg : 0,
      versionMax: 0, versionActive: 0, isid: req.isid, tsih: this.existing?.tsih ?? 0,
      statSN: this.host.statSN, expCmdSN: this.cmdSN, maxCmdSN: serialAdd(this.cmdSN, cmdsnDepth(this.admission?.tpg.attributes) - 1),
      statusClass: status >> 8, statusDetail: status & 0xff,
    };
  }
}
