// What the iSCSI fabric asks of the configuration at login and discovery time (RFC 7143 §12, §13).
// The config layer implements it over the live object tree; the fabric reads it and never mutates it.

import type { LunView } from '../scsi/port.js';

export interface ChapCredentials {
  /** Name/secret the initiator must prove (one-way CHAP: target authenticates the initiator). */
  readonly userid: string;
  readonly password: string;
  /** Name/secret the target proves to the initiator (mutual CHAP); both empty when not set. */
  readonly mutualUserid: string;
  readonly mutualPassword: string;
}

export interface PortalAddress {
  readonly ip: string; // "0.0.0.0" / "::" mean all interfaces
  readonly port: number;
  /** The connection came through a tunnel: ip:port is the relay's advertised portal, not a local address. */
  readonly tunnel?: boolean;
}

/** A node ACL (LIO NodeACL): who may log in and which LUNs they see. */
export interface AclView {
  readonly initiatorName: string;
  readonly chap: ChapCredentials;
  readonly luns: LunView;
  /** Pushed by the gateway; not editable locally. */
  readonly managed: boolean;
}

export interface TpgView {
  readonly targetName: string;
  readonly tag: number; // TPGT
  /** SPC-4 relative target port identifier of this TPG (unique per LU's ports); defaults to the TPGT. */
  readonly relativePortId?: number;
  readonly enabled: boolean;
  readonly portals: readonly PortalAddress[];
  /** Advertised relay portals of this TPG's tunnels (outpost_tunnels): the paths a tunnel connection may use. */
  readonly tunnelPortals?: readonly PortalAddress[];
  /** attribute authentication=1: CHAP is required. */
  readonly authentication: boolean;
  /** attribute generate_node_acls=1: any initiator may log in (demo mode) and sees `demoLuns`. */
  readonly generateNodeAcls: boolean;
  /** TPG-wide CHAP (set auth on the TPG), used for initiators without an explicit ACL in demo mode. */
  readonly chap: ChapCredentials;
  /** RFC 7143 keys as the TPG offers them (saveconfig "parameters": "HeaderDigest": "CRC32C,None", …). */
  readonly parameters: Readonly<Record<string, string>>;
  /** attributes from saveconfig.json (login_timeout, netif_timeout, default_cmdsn_depth, …). */
  readonly attributes: Readonly<Record<string, number | string | boolean>>;
  acl(initiatorName: string): AclView | undefined;
  /** LUNs seen by initiators admitted through generate_node_acls (write-protected per demo_mode_write_protect). */
  readonly demoLuns: LunView;
}

export interface TargetView {
  readonly name: string;
  readonly tpgs: readonly TpgView[];
}

export interface DiscoveryAuth {
  /** discovery_enable_auth: SendTargets sessions must pass CHAP. */
  readonly enabled: boolean;
  readonly chap: ChapCredentials;
}

export interface TargetRegistry {
  targets(): readonly TargetView[];
  target(name: string): TargetView | undefined;
  discoveryAuth(): DiscoveryAuth;
}
