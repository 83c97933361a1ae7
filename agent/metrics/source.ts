// What a scrape reads from a running agent: its status (sessions, LUN stats, portals) and the control link.
import { iscsiTargets } from '../config/schema.js';
import type { Agent } from '../main.js';
import type { MetricsSource } from './agent-metrics.js';

interface LinkState {
  readonly connected: boolean;
  readonly appliedVersion: number;
}

const hostPort = (ip: string, port: number): string => `${ip.replace(/^\[(.*)\]$/, '$1')}:${port}`;

export function agentSource(agent: Agent, gateway: string | undefined, link: () => LinkState | undefined): MetricsSource {
  const shown = gateway?.replace(/\/\/[^@/]*@/, '//'); // never a userinfo part in a label
  return {
    sessions: () => agent.server.sessions(),
    luns: () => agent.status().luns,
    configuredPortals: () => iscsiTargets(agent.model()).flatMap((t) => t.tpgs.filter((g) => g.enable).flatMap((g) => g.portals.map((p) => hostPort(p.ip_address, p.port)))),
    listeningPortals: () => agent.server.listening().map((p) => hostPort(p.ip, p.port)),
    policyVersion: () => agent.status().policyVersion,
    controlLink: () => {
      const l = link();
      return l && shown ? { gateway: shown, connected: l.connected, appliedVersion: l.appliedVersion } : undefined;
    },
  };
}
