// `get`/`set` configuration groups (configshell ui_getgroup_*/ui_setgroup_*): global, attribute, parameter,
// auth, discovery_auth, alua — each a view of a key/value map in the model.
import { sameIscsiName } from '../config/names.js';
import { defaultAluaTpg, iscsiFabric, parseStorageObjectPath, type FabricModuleConfig, type RootConfig } from '../config/schema.js';
import { GEOMETRY_ATTRIBUTES } from '../scsi/logical-unit.js';
import { managedRefusal } from './commands.js';
import { BANDWIDTH_ATTRIBUTES, parseSchedule } from '../sites/bandwidth.js';
import { DEFAULT_PREFS, ShellError, type PrefValue } from './host.js';
import { findAcl, findSo, findTpg, type TreeNode } from './tree.js';
import { SCHEDULE_ATTRIBUTES, setScheduleAttribute } from '../sites/schedule.js';

export interface Group {
  /** Current values (strings as printed). */
  get(root: RootConfig): Record<string, string>;
  /** Sets one parameter on the draft model; throws ShellError on a bad name/value. */
  set?(root: RootConfig, name: string, value: string): void;
  /** Values offered by completion. */
  values?(name: string): string[];
  /** Global preferences live outside the model. */
  readonly prefs?: true;
}

const err = (m: string): never => {
  throw new ShellError(m);
};
const AUTH_KEYS = ['userid', 'password', 'mutual_userid', 'mutual_password'] as const;

/** Sets a key of a scalar map, keeping the type of the current value (numbers stay numbers). */
function setScalar(map: Record<string, string | number | boolean>, name: string, value: string, what: string): void {
  if (!(name in map)) err(`Unknown ${what} ${name}. Known: ${Object.keys(map).sort().join(', ')}`);
  const cur = map[name];
  if (typeof cur === 'number') {
    if (!/^-?\d+$/.test(value)) err(`Syntax error, '${value}' is not a NUMBER (${what} ${name}).`);
    const n = Number(value);
    if (/^(authentication|generate_node_acls|demo_mode_write_protect|prod_mode_write_protect|cache_dynamic_acls|demo_mode_discovery|emulate_\w+|is_nonrot)$/.test(name) && n !== 0 && n !== 1) err(`${what} ${name} must be 0 or 1.`);
    map[name] = n;
  } else if (typeof cur === 'boolean') {
    if (!['true', 'false', '1', '0'].includes(value)) err(`Syntax error, '${value}' is not true|false.`);
    map[name] = value === 'true' || value === '1';
  } else map[name] = value;
}

const asStrings = (m: Record<string, unknown>): Record<string, string> => Object.fromEntries(Object.entries(m).map(([k, v]) => [k, String(v)]));

export function groupsFor(node: TreeNode, prefs: Record<string, PrefValue>): Record<string, Group> {
  const g: Record<string, Group> = {
    global: {
      prefs: true,
      get: () => asStrings(Object.fromEntries(Object.entries({ ...DEFAULT_PREFS, ...prefs }).filter(([k]) => k in DEFAULT_PREFS))),
      values: (name) => (typeof DEFAULT_PREFS[name] === 'boolean' ? ['true', 'false'] : []),
    },
  };
  const ids = node.ids;
  const tpgOf = (root: RootConfig) => findTpg(root, ids.target!, Number(ids.tag)) ?? err('TPG no longer exists.');
  switch (node.kind) {
    case 'so': {
      const soOf = (root: RootConfig) => findSo(root, ids.plugin as never, ids.so!) ?? err('Storage object no longer exists.');
      g.attribute = {
        get: (root) => asStrings(soOf(root).attributes ?? {}),
        set: (root, name, value) => {
          const attrs = (soOf(root).attributes ??= {});
          if (ids.plugin === 'object' && (BANDWIDTH_ATTRIBUTES as readonly string[]).includes(name)) {
            try {
              parseSchedule(value, name);
            } catch (e) {
              err((e as Error).message);
            }
            attrs[name] = value;
            return;
          }
          const before = attrs[name];
          if (ids.plugin === 'object' && (SCHEDULE_ATTRIBUTES as readonly string[]).includes(name)) {
            try { setScheduleAttribute(attrs, name, value); } catch (e) { err((e as Error).message); }
            return;
          }
          setScalar(attrs, name, value, 'attribute');
          if (typeof attrs[name] === 'number' && (attrs[name] as number) < 0) err(`attribute ${name} cannot be negative.`);
          // LIO refuses block_size while the device is exported (export_count): it would change the geometry
          // under logged-in initiators, and here it also reopens the LU, dropping its reservations and UAs.
          if (GEOMETRY_ATTRIBUTES.includes(name) && String(attrs[name]) !== String(before)) {
            const n = root.targets.reduce((acc, t) => acc + t.tpgs.reduce((a, g) => a + g.luns.filter((l) => l.storage_object === node.path).length, 0), 0);
            if (n > 0) err(`Cannot change ${name} of ${node.path} while it is exported (${n} LUN${n > 1 ? 's' : ''}); delete the LUN${n > 1 ? 's' : ''} first.`);
          }
        },
      };
      break;
    }
    case 'alua_tpg': {
      // targetcli: /backstores/<type>/<so>/alua/<group> set alua alua_access_state=N (LIO tg_pt_gp attributes).
      const grpOf = (root: RootConfig) => {
        const so = findSo(root, ids.plugin as never, ids.so!) ?? err('Storage object no longer exists.');
        so.alua_tpgs ??= [defaultAluaTpg()];
        return so.alua_tpgs.find((x) => x.name === ids.alua) ?? err(`ALUA group ${ids.alua} no longer exists.`);
      };
      const ALLOWED: Record<string, readonly number[]> = {
        alua_access_state: [0, 1, 2, 3, 4, 14, 15], alua_access_type: [0, 1, 2, 3], preferred: [0, 1], alua_access_status: [0, 1, 2],
        nonop_delay_msecs: [], trans_delay_msecs: [], implicit_trans_secs: [],
      };
      g.alua = {
        get: (root) => asStrings(Object.fromEntries(Object.entries(grpOf(root)).filter(([k]) => k !== 'name' && k !== 'tg_pt_gp_id'))),
        set: (root, name, value) => {
          const allowed = ALLOWED[name] ?? err(`Unknown alua parameter ${name}. Known: ${Object.keys(ALLOWED).join(', ')}`);
          if (!/^\d+$/.test(value)) err(`Syntax error, '${value}' is not a NUMBER (alua ${name}).`);
          const n = Number(value);
          if (allowed.length > 0 && !allowed.includes(n)) err(`Invalid value ${value} for alua ${name}; allowed: ${allowed.join(', ')}.`);
          grpOf(root)[name] = n;
        },
        values: (name) => (ALLOWED[name] ?? []).map(String),
      };
      break;
    }
    case 'tpg':
      g.attribute = { get: (root) => asStrings(tpgOf(root).attributes), set: (root, n, v) => setScalar(tpgOf(root).attributes, n, v, 'attribute'), values: () => ['0', '1'] };
      g.parameter = { get: (root) => asStrings(tpgOf(root).parameters), set: (root, n, v) => setScalar(tpgOf(root).parameters, n, v, 'parameter') };
      g.auth = authGroup((root) => tpgOf(root) as Record<string, unknown>);
      break;
    case 'acl': {
      const aclOf = (root: RootConfig, edit: boolean) => {
        const acl = findAcl(tpgOf(root), ids.acl!) ?? err('ACL no longer exists.');
        if (edit && acl.outpost_managed) err(managedRefusal(acl.node_wwn));
        return acl;
      };
      g.attribute = { get: (root) => asStrings(aclOf(root, false).attributes ?? {}), set: (root, n, v) => setScalar((aclOf(root, true).attributes ??= {}), n, v, 'attribute') };
      g.auth = authGroup((root, edit) => aclOf(root, edit) as Record<string, unknown>, true);
      break;
    }
    case 'iscsi':
      g.discovery_auth = {
        get: (root) => {
          const f: Partial<FabricModuleConfig> = iscsiFabric(root) ?? {};
          return { enable: String(f.discovery_enable_auth ? 1 : 0), userid: f.discovery_userid ?? '', password: f.discovery_password ?? '', mutual_userid: f.discovery_mutual_userid ?? '', mutual_password: f.discovery_mutual_password ?? '' };
        },
        set: (root, name, value) => {
          let f = iscsiFabric(root);
          if (!f) root.fabric_modules.push((f = { name: 'iscsi', discovery_enable_auth: false, discovery_userid: '', discovery_password: '', discovery_mutual_userid: '', discovery_mutual_password: '' }));
          if (name === 'enable') {
            if (!['0', '1', 'true', 'false'].includes(value)) err(`Syntax error, '${value}' is not 0|1.`);
            f.discovery_enable_auth = value === '1' || value === 'true';
          } else if ((AUTH_KEYS as readonly string[]).includes(name)) f[`discovery_${name}`] = value;
          else err(`Unknown discovery_auth parameter ${name}. Known: enable, ${AUTH_KEYS.join(', ')}`);
        },
        values: (name) => (name === 'enable' ? ['0', '1'] : []),
      };
      break;
    case 'lun':
      g.alua = {
        get: (root) => ({ alua_tg_pt_gp_name: tpgOf(root).luns.find((l) => l.index === Number(ids.lun))?.alua_tg_pt_gp_name ?? 'default_tg_pt_gp' }),
        set: (root, name, value) => {
          if (name !== 'alua_tg_pt_gp_name') err(`Unknown alua parameter ${name}.`);
          const lun = tpgOf(root).luns.find((l) => l.index === Number(ids.lun)) ?? err('LUN no longer exists.');
          const p = parseStorageObjectPath(lun.storage_object);
          const so = p && findSo(root, p.plugin, p.name);
          const groups = so?.alua_tpgs?.map((x) => x.name) ?? ['default_tg_pt_gp'];
          if (!groups.includes(value)) err(`ALUA group ${value} does not exist on ${lun.storage_object}.`);
          lun.alua_tg_pt_gp_name = value;
        },
      };
      break;
    default:
      break;
  }
  return g;
}

function authGroup(objOf: (root: RootConfig, edit: boolean) => Record<string, unknown>, _acl = false): Group {
  return {
    get: (root) => Object.fromEntries(AUTH_KEYS.map((k) => [k, String(objOf(root, false)[`chap_${k}`] ?? '')])),
    set: (root, name, value) => {
      if (!(AUTH_KEYS as readonly string[]).includes(name)) err(`Unknown auth parameter ${name}. Known: ${AUTH_KEYS.join(', ')}`);
      objOf(root, true)[`chap_${name}`] = value;
    },
  };
}

export { sameIscsiName };
