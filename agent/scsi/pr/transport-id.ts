// SPC-4 §7.6.4.6 iSCSI TransportID: the initiator port a REGISTER AND MOVE names.
const ISCSI_PROTOCOL = 5;

/**
 * Returns the iSCSI initiator port name ("iqn…,i,0x<isid>") of a format 01b TransportID, or undefined when
 * the TransportID is not iSCSI, names only a node (format 00b: no port identity), or is malformed.
 */
export function parseTransportId(tid: Buffer): string | undefined {
  if (tid.length < 4 || (tid[0] & 0x0f) !== ISCSI_PROTOCOL || tid[0] >> 6 !== 1) return undefined;
  const len = tid.readUInt16BE(2);
  if (len + 4 > tid.length) return undefined;
  const body = tid.subarray(4, 4 + len);
  const end = body.indexOf(0);
  const text = body.subarray(0, end < 0 ? body.length : end).toString('utf8');
  const m = /^(.+),i,0x([0-9a-fA-F]{12})$/.exec(text);
  if (!m) return undefined;
  return `${m[1]},i,0x${m[2].toLowerCase()}`;
}
