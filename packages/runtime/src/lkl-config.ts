/**
 * The LKL JSON configuration (`lkl.json`) a frankenlibc unikernel reads from `--config`: built from network
 * settings the way runnc's `CreateLklArgs` (runnc-lkl `runnc_cont/lkl.go`) does, validated against the keys
 * LKL's parser (`tools/lkl/lib/config.c`) accepts, and escaped for the spt command line.
 */
import { isIP, isIPv4 } from 'node:net';
import { UsageError } from '@nabla-build/model';

/** Top-level keys LKL's config parser accepts, in runnc's serialisation order (`route` is not in runnc). */
export const LKL_TOP_LEVEL_KEYS = [
  'interfaces',
  'gateway',
  'gateway6',
  'debug',
  'mount',
  'singlecpu',
  'sysctl',
  'boot_cmdline',
  'dump',
  'delay_main',
  'route',
] as const;

/** Per-interface keys LKL's config parser accepts, in runnc's serialisation order. */
export const LKL_INTERFACE_KEYS = [
  'type',
  'name',
  'param',
  'mtu',
  'ip',
  'ipv6',
  'ifgateway',
  'ifgateway6',
  'mac',
  'masklen',
  'masklen6',
  'neigh',
  'qdisc',
  'offload',
] as const;

export type LklTopLevelKey = Exclude<(typeof LKL_TOP_LEVEL_KEYS)[number], 'interfaces'>;
export type LklInterfaceKey = (typeof LKL_INTERFACE_KEYS)[number];

/** One `interfaces[]` entry: every value is a string. */
export type LklInterface = Partial<Record<LklInterfaceKey, string>>;

/** The whole configuration: `interfaces` plus string-valued top-level keys (`buildLklConfig` always sets `interfaces`). */
export type LklConfig = { interfaces?: LklInterface[] } & Partial<Record<LklTopLevelKey, string>>;

/** What runnc sets at the top level, always. */
export const RUNNC_LKL_DEFAULTS: Readonly<Partial<Record<LklTopLevelKey, string>>> = Object.freeze({
  debug: '1',
  singlecpu: '1',
  delay_main: '50000',
  sysctl: 'net.ipv4.tcp_wmem=4096 87380 2147483647',
});

/** The net device name in the frankenlibc manifest; the guest finds its fd via `__RUMP_FDINFO_NET_<name>`. */
export const DEFAULT_NET_NAME = 'tap';

/** The guest's address on its tap interface. */
export interface LklNetSettings {
  /** IPv4 address of the guest. */
  ip: string;
  /** Prefix length (CIDR). `32` is rewritten to `1` with a warning, as runnc does (runnc issue #40). */
  masklen: number | string;
  /** Per-interface gateway (`ifgateway`), usually the host side of the tap. */
  gateway?: string;
  /** Interface name as in the manifest; default `tap`. */
  name?: string;
  /** Further per-interface keys (`mtu`, `mac`, `offload`...), validated like the rest. */
  extra?: Partial<Record<LklInterfaceKey, string>>;
}

export interface LklConfigOptions {
  /** The tap interface; without it the config has `interfaces: []`. */
  net?: LklNetSettings;
  /** Extra top-level keys (`boot_cmdline`, `mount`, `route`...); they override runnc's defaults. */
  extra?: Partial<Record<LklTopLevelKey, string>>;
  /** Receives warnings (the `/32` rewrite). */
  onWarning?: (message: string) => void;
}

/** runnc's warning text for the `/32` rewrite, kept recognisable. */
export const MASK32_WARNING =
  'WARNING: Changing CIDR from 32 to 1 due to Issue https://github.com/nabla-containers/runnc/issues/40';

/** Builds an LKL config from network settings, starting from runnc's defaults, then validates it. */
export function buildLklConfig(opts: LklConfigOptions = {}): LklConfig {
  const interfaces = opts.net ? [buildInterface(opts.net, opts.onWarning)] : [];
  return validateLklConfig({ interfaces, ...RUNNC_LKL_DEFAULTS, ...opts.extra });
}

function buildInterface(net: LklNetSettings, onWarning?: (m: string) => void): LklInterface {
  if (!isIPv4(net.ip)) {
    throw new UsageError('lkl.invalid', `interfaces[0].ip: \`${net.ip}\` is not an IPv4 address`, {
      hint: 'give the guest address as a.b.c.d, e.g. 169.254.10.2',
    });
  }
  let mask = String(net.masklen);
  if (!/^(?:[0-9]|[12][0-9]|3[0-2])$/.test(mask)) {
    throw new UsageError('lkl.invalid', `interfaces[0].masklen: \`${mask}\` is not a prefix length 0-32`);
  }
  if (mask === '32') {
    onWarning?.(MASK32_WARNING);
    mask = '1';
  }
  if (net.gateway !== undefined && !isIP(net.gateway)) {
    throw new UsageError('lkl.invalid', `interfaces[0].ifgateway: \`${net.gateway}\` is not an IP address`);
  }
  return {
    type: 'rumpfd',
    name: net.name ?? DEFAULT_NET_NAME,
    ip: net.ip,
    masklen: mask,
    ...(net.gateway !== undefined ? { ifgateway: net.gateway } : {}),
    ...net.extra,
  };
}

/**
 * Checks that `value` has only keys LKL's parser accepts and that every value is a string (LKL rejects
 * unknown keys and non-string values). Returns it typed; throws a UsageError naming the key path otherwise.
 */
export function validateLklConfig(value: unknown): LklConfig {
  const fail = (path: string, problem: string): never => {
    throw new UsageError('lkl.invalid', `${path}: ${problem}`, {
      hint: `LKL accepts top-level keys ${LKL_TOP_LEVEL_KEYS.join(', ')} and interface keys ${LKL_INTERFACE_KEYS.join(', ')}; every value is a string`,
    });
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('(config)', 'must be a JSON object');
  const obj = value as Record<string, unknown>;
  for (const [key, v] of Object.entries(obj)) {
    if (!(LKL_TOP_LEVEL_KEYS as readonly string[]).includes(key)) fail(key, 'unknown key (LKL rejects it)');
    if (key === 'interfaces' || v === undefined) continue;
    if (typeof v !== 'string') fail(key, `must be a string, got ${describe(v)}`);
  }
  const ifs = obj.interfaces;
  if (ifs === undefined) return obj as LklConfig;
  if (!Array.isArray(ifs)) fail('interfaces', `must be an array, got ${describe(ifs)}`);
  (ifs as unknown[]).forEach((iface, i) => {
    const p = `interfaces[${i}]`;
    if (iface === null || typeof iface !== 'object' || Array.isArray(iface)) fail(p, 'must be an object');
    for (const [key, v] of Object.entries(iface as Record<string, unknown>)) {
      if (!(LKL_INTERFACE_KEYS as readonly string[]).includes(key)) fail(`${p}.${key}`, 'unknown key (LKL rejects it)');
      if (v === undefined) continue;
      if (typeof v !== 'string') fail(`${p}.${key}`, `must be a string, got ${describe(v)}`);
    }
  });
  return obj as LklConfig;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

/**
 * Serialises a config with keys in runnc's struct order (so equal configs give equal text, and runnc's own
 * configs come out byte-identical to Go's `json.Marshal`, which only differs by HTML-escaping `<>&`).
 */
export function lklConfigJson(cfg: LklConfig): string {
  validateLklConfig(cfg);
  const ordered: Record<string, unknown> = {};
  for (const key of LKL_TOP_LEVEL_KEYS) {
    if (key === 'interfaces') {
      if (cfg.interfaces === undefined) continue;
      ordered.interfaces = cfg.interfaces.map((iface) => {
        const o: Record<string, string> = {};
        for (const k of LKL_INTERFACE_KEYS) if (iface[k] !== undefined) o[k] = iface[k];
        return o;
      });
    } else if (cfg[key] !== undefined) {
      ordered[key] = cfg[key];
    }
  }
  return JSON.stringify(ordered);
}

/**
 * Escapes the JSON text into one word for the guest tokenizer, as runnc does after `json.Marshal`: `"` becomes
 * `\"` and a space becomes `\ `. For any JSON runnc itself produces the result is byte-identical to runnc's.
 * Backslash, `'` and the other whitespace characters are escaped the same way too (runnc does not, so a
 * JSON string value holding them would be mangled by the guest).
 */
export function escapeForCmdline(json: string): string {
  return json.replace(/[\\"' \t\n\v\f\r]/g, (c) => `\\${c}`);
}
