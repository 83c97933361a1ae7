// The rtslib-fb object tree as plain data: saveconfig.json is Root's dump (rtslib-fb root.py, tcm.py, target.py).
// Every node keeps keys it does not know (index signatures), so a targetcli file round-trips unchanged.

export type Scalar = number | string | boolean;

export const PLUGINS = ['fileio', 'block', 'rd_mcp', 'pscsi', 'object'] as const;
export type Plugin = (typeof PLUGINS)[number];

/** Path component under /backstores for each plugin (rd_mcp shows as "ramdisk"). */
export const PLUGIN_DIR = { fileio: 'fileio', block: 'block', rd_mcp: 'ramdisk', pscsi: 'pscsi', object: 'object' } as const satisfies Record<Plugin, string>;
export type BackstoreDir = (typeof PLUGIN_DIR)[Plugin];
export const DIR_PLUGIN: Record<string, Plugin> = { fileio: 'fileio', block: 'block', ramdisk: 'rd_mcp', rd_mcp: 'rd_mcp', pscsi: 'pscsi', object: 'object' };

export interface AluaTpgConfig {
  name: string;
  tg_pt_gp_id: number;
  alua_access_state?: number;
  alua_access_type?: number;
  preferred?: number;
  [key: string]: unknown;
}

export interface StorageObjectConfig {
  plugin: Plugin;
  name: string;
  wwn?: string;
  dev?: string;
  size?: number;
  write_back?: boolean;
  readonly?: boolean;
  attributes?: Record<string, Scalar>;
  alua_tpgs?: AluaTpgConfig[];
  /** INQUIRY product identification (LIO's wwn/product_id): kept when a LUN moves to another backstore kind, so every path reports one product. */
  product_id?: string;
  // plugin "object" (Outpost's S3 backstore)
  bucket?: string;
  prefix?: string;
  endpoint?: string;
  region?: string;
  force_path_style?: boolean;
  cache_dir?: string;
  cache_size?: number;
  [key: string]: unknown;
}

export interface LunConfig {
  index: number;
  storage_object: string; // "/backstores/<dir>/<name>"
  alias?: string;
  alua_tg_pt_gp_name?: string;
  [key: string]: unknown;
}

export interface MappedLunConfig {
  index: number;
  tpg_lun: number;
  write_protect: boolean;
  alias?: string;
  [key: string]: unknown;
}

export interface NodeAclConfig {
  node_wwn: string;
  chap_userid?: string;
  chap_password?: string;
  chap_mutual_userid?: string;
  chap_mutual_password?: string;
  attributes?: Record<string, Scalar>;
  mapped_luns: MappedLunConfig[];
  /** Pushed by the gateway (policy); never written to saveconfig.json. */
  outpost_managed?: boolean;
  [key: string]: unknown;
}

export interface PortalConfig {
  ip_address: string;
  port: number;
  iser?: boolean;
  offload?: boolean;
  [key: string]: unknown;
}

/** Outpost's TPG key `outpost_tunnels`: this TPG is also reachable through these relays (docs/tunnels.md). */
export interface TunnelConfig {
  url: string; // ws://127.0.0.1:… (loopback only) or wss://relay.example:443/
  advertise: string; // HOST:PORT initiators use at the relay
  token_file: string;
  source?: string; // local address to dial from
  ca_file?: string; // pinned CA (PEM) instead of the system store
  [key: string]: unknown;
}

export interface TpgConfig {
  tag: number;
  enable: boolean;
  attributes: Record<string, Scalar>;
  parameters: Record<string, string>;
  luns: LunConfig[];
  node_acls: NodeAclConfig[];
  portals: PortalConfig[];
  chap_userid?: string;
  chap_password?: string;
  chap_mutual_userid?: string;
  chap_mutual_password?: string;
  outpost_tunnels?: TunnelConfig[];
  [key: string]: unknown;
}

export interface TargetConfig {
  wwn: string;
  fabric: string;
  tpgs: TpgConfig[];
  [key: string]: unknown;
}

export interface FabricModuleConfig {
  name: string;
  discovery_enable_auth?: boolean;
  discovery_userid?: string;
  discovery_password?: string;
  discovery_mutual_userid?: string;
  discovery_mutual_password?: string;
  [key: string]: unknown;
}

export interface RootConfig {
  storage_objects: StorageObjectConfig[];
  targets: TargetConfig[];
  fabric_modules: FabricModuleConfig[];
  [key: string]: unknown;
}

export function storageObjectPath(so: Pick<StorageObjectConfig, 'plugin' | 'name'>): string {
  return `/backstores/${PLUGIN_DIR[so.plugin]}/${so.name}`;
}

/** "/backstores/ramdisk/rd1" → {plugin:'rd_mcp', name:'rd1'}; undefined when malformed. */
export function parseStorageObjectPath(path: string): { plugin: Plugin; name: string } | undefined {
  const m = /^\/backstores\/([a-z_]+)\/([^/]+)$/.exec(path);
  if (!m) return undefined;
  const plugin = DIR_PLUGIN[m[1]!];
  return plugin ? { plugin, name: m[2]! } : undefined;
}

export function emptyRoot(): RootConfig {
  return { storage_objects: [], targets: [], fabric_modules: [] };
}

/** LIO's defaults for a new TPG (what targetcli on RHEL writes). */
export function defaultTpgAttributes(): Record<string, Scalar> {
  return {
    authentication: 0, cache_dynamic_acls: 0, default_cmdsn_depth: 64, default_erl: 0, demo_mode_discovery: 1,
    demo_mode_write_protect: 1, fabric_prot_type: 0, generate_node_acls: 0, login_keys_workaround: 1, login_timeout: 15,
    netif_timeout: 2, prod_mode_write_protect: 0, t10_pi: 0, tpg_enabled_sendtargets: 1,
  };
}

export function defaultTpgParameters(): Record<string, string> {
  return {
    AuthMethod: 'CHAP,None', DataDigest: 'CRC32C,None', DataPDUInOrder: 'Yes', DataSequenceInOrder: 'Yes',
    DefaultTime2Retain: '20', DefaultTime2Wait: '2', ErrorRecoveryLevel: '0', FirstBurstLength: '65536',
    HeaderDigest: 'CRC32C,None', IFMarkInt: 'Reject', IFMarker: 'No', ImmediateData: 'Yes', InitialR2T: 'Yes',
    MaxBurstLength: '262144', MaxConnections: '1', MaxOutstandingR2T: '1', MaxRecvDataSegmentLength: '8192',
    MaxXmitDataSegmentLength: '262144', OFMarkInt: 'Reject', OFMarker: 'No', TargetAlias: 'LIO Target',
  };
}

export function defaultAclAttributes(): Record<string, Scalar> {
  return {
    dataout_timeout: 3, dataout_timeout_retries: 5, default_erl: 0, nopin_response_timeout: 30, nopin_timeout: 15,
    random_datain_pdu_offsets: 0, random_datain_seq_offsets: 0, random_r2t_offsets: 0,
  };
}

export function defaultStorageAttributes(plugin: Plugin): Record<string, Scalar> {
  const common: Record<string, Scalar> = {
    block_size: 512, emulate_3pc: 1, emulate_caw: 1, emulate_dpo: 1, emulate_fua_read: 1, emulate_fua_write: 1,
    emulate_model_alias: 1, emulate_pr: 1, emulate_rest_reord: 0, emulate_tas: 1, emulate_tpu: 0, emulate_tpws: 0,
    emulate_ua_intlck_ctrl: 0, emulate_write_cache: 0, enforce_pr_isids: 1, force_pr_aptpl: 0, is_nonrot: 0,
    max_unmap_block_desc_count: 0, max_unmap_lba_count: 0, max_write_same_len: 4096, optimal_sectors: 16384,
    pgr_support: 1, pi_prot_format: 0, pi_prot_type: 0, pi_prot_verify: 0, queue_depth: 128, unmap_granularity: 0,
    unmap_granularity_alignment: 0, unmap_zeroes_data: 0,
  };
  if (plugin === 'fileio' || plugin === 'object' || plugin === 'rd_mcp') {
    common.emulate_tpu = 1;
    common.max_unmap_block_desc_count = 1;
    common.max_unmap_lba_count = 8192;
    common.unmap_granularity = 1;
  }
  if (plugin === 'rd_mcp') common.is_nonrot = 1;
  return common;
}

export function defaultAluaTpg(): AluaTpgConfig {
  return {
    alua_access_state: 0, alua_access_status: 0, alua_access_type: 3, alua_support_active_nonoptimized: 1,
    alua_support_active_optimized: 1, alua_support_offline: 1, alua_support_standby: 1, alua_support_transitioning: 1,
    alua_support_unavailable: 1, alua_write_metadata: 0, implicit_trans_secs: 0, name: 'default_tg_pt_gp',
    nonop_delay_msecs: 100, preferred: 0, tg_pt_gp_id: 0, trans_delay_msecs: 0,
  };
}

export function iscsiFabric(root: RootConfig): FabricModuleConfig | undefined {
  return root.fabric_modules.find((f) => f.name === 'iscsi');
}

export function iscsiTargets(root: RootConfig): TargetConfig[] {
  return root.targets.filter((t) => t.fabric === 'iscsi');
}
