// RFC 7143 §6.3, §11.13.5: which target/TPG/ACL a login names, and the login status when it may not proceed.
import { LoginStatus } from '../pdu/constants.js';
import { portalMatches } from '../discovery.js';
import type { AclView, ChapCredentials, PortalAddress, TargetRegistry, TpgView } from '../target-registry.js';
import type { LunView } from '../../scsi/port.js';

export class LoginError extends Error {
  /** `quiet`: logged at debug (a refusal repeated in a flood, already logged once). */
  constructor(readonly status: LoginStatus, message: string, readonly quiet = false) {
    super(message);
  }
}

export interface Admission {
  tpg: TpgView;
  acl?: AclView;
  luns: LunView;
  /** CHAP is mandatory: TPG attribute authentication=1, or the ACL has CHAP credentials (LIO per-ACL auth). */
  authRequired: boolean;
  /** Credentials the initiator must prove: the ACL's, else the TPG-wide ones (generate_node_acls). */
  chap: ChapCredentials;
}

/** A tunnel connection reaches only TPGs with that tunnel; a portal connection only TPGs with that portal. */
export function pathsOf(tpg: TpgView, local: PortalAddress): readonly PortalAddress[] {
  return local.tunnel ? tpg.tunnelPortals ?? [] : tpg.portals;
}

export function hasChap(c: ChapCredentials): boolean {
  return c.userid !== '' && c.password !== '';
}

/** Resolves a normal-session login to its TPG and ACL, or throws the LoginError to answer with. */
export function admitNormal(registry: TargetRegistry, targetName: string, initiatorName: string, local: PortalAddress): Admission {
  const target = registry.target(targetName);
  if (!target) throw new LoginError(LoginStatus.NOT_FOUND, `target ${targetName} not found`);
  const tpg = target.tpgs.find((t) => t.enabled && pathsOf(t, local).some((p) => portalMatches(p, local)));
  if (!tpg) throw new LoginError(LoginStatus.NOT_FOUND, `target ${targetName} is not reachable through ${local.ip}:${local.port}`);
  const acl = tpg.acl(initiatorName);
  if (!acl && !tpg.generateNodeAcls) {
    throw new LoginError(LoginStatus.AUTHORIZATION_FAILURE, `initiator ${initiatorName} has no ACL on ${targetName} tpg ${tpg.tag}`);
  }
  const chap = acl ? acl.chap : tpg.chap;
  return { tpg, acl, luns: acl ? acl.luns : tpg.demoLuns, authRequired: tpg.authentication || (acl !== undefined && hasChap(acl.chap)), chap };
}
