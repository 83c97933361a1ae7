// RFC 7143 §4.2.7 names in libiscsi's URL form: iscsi://[user[%secret]@]host[:port]/target-iqn/lun.
import { isValidIscsiName } from '../config/names.js';

export interface IscsiUrl {
  host: string;
  port: number;
  iqn: string;
  lun: number;
  /** CHAP user name (one-way CHAP) when given. */
  user?: string;
  /** CHAP secret when given in the URL (kept out of saved configuration: see redactIscsiUrl). */
  secret?: string;
}

export class IscsiUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IscsiUrlError';
  }
}

const SHAPE = /^iscsi:\/\/(?:([^@/]*)@)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?\/([^/]+)\/(\d{1,5})$/;

/** Parses an iscsi:// URL; every malformed part is named in the error. */
export function parseIscsiUrl(url: string): IscsiUrl {
  const fail = (why: string): never => {
    throw new IscsiUrlError(`malformed import URL ${JSON.stringify(redactIscsiUrl(url))}: ${why} (expected iscsi://[user%secret@]host:port/iqn/lun)`);
  };
  if (!url.startsWith('iscsi://')) fail('it must start with iscsi://');
  const m = SHAPE.exec(url) ?? fail('expected host[:port]/target-name/lun');
  const [, auth, host, portText, iqnText, lunText] = m;
  const port = portText === undefined ? 3260 : Number(portText);
  if (port < 1 || port > 65535) fail(`port ${portText} is out of range`);
  let iqn: string;
  try {
    iqn = decodeURIComponent(iqnText!);
  } catch {
    return fail('the target name is not valid percent-encoding');
  }
  if (!isValidIscsiName(iqn)) fail(`"${iqn}" is not an iSCSI name (iqn.…, eui.… or naa.…)`);
  const lun = Number(lunText);
  if (lun > 16383) fail(`LUN ${lun} is out of range (0..16383)`);
  const out: IscsiUrl = { host: host!.replace(/^\[(.*)\]$/, '$1'), port, iqn, lun };
  if (auth !== undefined) {
    const pct = auth.indexOf('%');
    const user = pct < 0 ? auth : auth.slice(0, pct);
    if (!user) fail('the CHAP user name before @ is empty');
    out.user = user;
    if (pct >= 0) {
      const secret = auth.slice(pct + 1);
      if (!secret) fail('the CHAP secret after % is empty');
      out.secret = secret;
    }
  }
  return out;
}

/** The URL without its secret (what saveconfig.json, logs and `info` may show). */
export function redactIscsiUrl(url: string): string {
  return url.replace(/^(iscsi:\/\/[^@/%]*)%[^@/]*@/, '$1@');
}

export function formatIscsiUrl(u: IscsiUrl): string {
  const host = u.host.includes(':') ? `[${u.host}]` : u.host;
  return `iscsi://${u.user ? `${u.user}@` : ''}${host}:${u.port}/${u.iqn}/${u.lun}`;
}
