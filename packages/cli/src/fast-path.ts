/**
 * The up-to-date check for fully cached builds, made before yargs, zod and the recipes are loaded: like make's
 * "nothing to be done", a rerun with unchanged inputs answers in about the time Node needs to start.
 *
 * A finished build writes a stamp `<cache>/stamps/<fingerprint>.json` naming the cache entries (directory and
 * key) of its final steps and, for the default command line, the images it left in the Docker engine. The
 * fingerprint covers what the plan is computed from: the command line, the recipe directory and patches as
 * trees, the user config, every variable of the settings catalog (settings/catalog.ts: a variable the CLI
 * reads is in the catalog, and so in the fingerprint — a test checks both), the host facts' sources (the
 * compiler binary, the architecture, the user and what decides the canonical build root), Node and this build
 * of nabla-build. Paths are resolved by the CLI's own settings code (settings/paths.ts); an entry is trusted
 * only when the engine's store check passes (readIntactEntry: complete, same key, files of their recorded
 * sizes); a loaded image only when the engine still has it under every tag. Anything else — another flag,
 * a changed file, a missing entry or tag, an engine that does not answer — falls through to the full CLI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { delimiter, join } from 'node:path';
import { readIntactEntry } from '@nabla-build/engine';
import { sha256Text, sha256Tree, writeFileAtomicSync } from '@nabla-build/fsio';
import { findProjectConfig, PROGRESS_MODES, SETTINGS } from './settings/catalog.js';
import { buildIdentity, fileIdentity } from './settings/parsed.js';
import { cacheDirSetting, configPathSetting, installRoot, recipesDirSetting } from './settings/paths.js';

/** The only command lines the fast path understands: `[build] <target...>` plus these options. */
export interface SimpleBuild {
  targets: string[];
  cacheDir: string;
  recipesDir: string;
  configPath: string;
  /** `--no-load`, or the default output (load into the engine when one answers). */
  load: 'no' | 'default';
}

const TARGET = /^[a-z0-9][a-z0-9._-]*$/;
const COMMANDS = new Set([
  'list',
  'plan',
  'fetch',
  'lock',
  'doctor',
  'run',
  'test',
  'runtime',
  'clean',
  'cache',
  'config',
  'completion',
  'schema',
  'help',
]);

/** Every variable the CLI reads (the catalog), but this check's own switch; and PATH, where `cc` is found. */
export const FINGERPRINT_ENV: readonly string[] = [
  ...SETTINGS.flatMap((s) => (s.env && s.name !== 'noFastPath' ? [s.env] : [])),
  'PATH',
];

/** Parses argv when it is a plain build; undefined for anything else (the full CLI handles it). */
export function parseSimpleBuild(argv: readonly string[], env: NodeJS.ProcessEnv): SimpleBuild | undefined {
  const targets: string[] = [];
  let cacheFlag: string | undefined;
  let noLoad = false;
  const args = argv[0] === 'build' ? argv.slice(1) : argv;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--cache-dir' && args[i + 1]) cacheFlag = args[++i];
    // Steps at once and -j of native builds: neither is part of a key.
    else if ((a === '--jobs' || a === '-j') && /^[1-9]\d{0,2}$/.test(args[i + 1] ?? '')) i++;
    else if (a === '--no-load') noLoad = true;
    else if (TARGET.test(a) && !COMMANDS.has(a)) targets.push(a);
    else return undefined;
  }
  if (targets.length === 0) return undefined;
  // A shared cache to fill: the full CLI pushes what the build completes.
  if (env.NABLA_BUILD_CACHE_TO) return undefined;
  try {
    // The CLI's own path resolution; a value it refuses is reported by the full CLI.
    const config = configPathSetting(undefined, env);
    if (config.required && !existsSync(config.path)) return undefined;
    const recipesDir = recipesDirSetting(undefined, env, () => join(installRoot(), 'recipes')).path;
    if (!layersAreSimple(env, recipesDir, config.path)) return undefined;
    return {
      targets: [...new Set(targets)].sort(),
      cacheDir: cacheDirSetting(cacheFlag, env).path,
      recipesDir,
      configPath: config.path,
      load: noLoad ? 'no' : 'default',
    };
  } catch {
    return undefined;
  }
}

/**
 * Recipe overlays, a project file (nabla-build.yaml) and recipe or cache directories set in the user config
 * are resolved by the full CLI (settings/layers.ts), and so are values it would refuse: the fast path declines
 * rather than fingerprint them.
 */
function layersAreSimple(env: NodeJS.ProcessEnv, recipesDir: string, configPath: string): boolean {
  // One directory with its own nabla.lock replaces the shipped recipes; anything else is an overlay.
  if (
    env.NABLA_BUILD_RECIPES !== undefined &&
    (recipesDir.includes(delimiter) || !existsSync(join(recipesDir, 'nabla.lock')))
  )
    return false;
  if (findProjectConfig()) return false;
  if (env.NABLA_BUILD_REPO) return false;
  if (env.NABLA_BUILD_PROGRESS && !(PROGRESS_MODES as readonly string[]).includes(env.NABLA_BUILD_PROGRESS))
    return false;
  try {
    // A shared cache to fill (cacheTo) means pushing what the build completes: the full CLI does that.
    if (/^["']?(recipes|cacheDir|cacheTo)["']?\s*:/m.test(readFileSync(configPath, 'utf8'))) return false;
  } catch {
    // no user config: nothing to resolve
  }
  return true;
}

/** Everything a plan depends on, hashed. `undefined` when something cannot be read (no fast path then). */
export function fingerprint(b: SimpleBuild, env: NodeJS.ProcessEnv): string | undefined {
  try {
    const parts: [string, string][] = [
      ['targets', b.targets.join(' ')],
      ['load', b.load],
      ['cache', b.cacheDir],
      ['recipes', `${b.recipesDir} ${sha256Tree(b.recipesDir)}`],
      ['patches', sha256Tree(join(b.recipesDir, '..', 'patches'))],
      ['config', existsSync(b.configPath) ? sha256Text(readFileSync(b.configPath)) : 'none'],
      ...FINGERPRINT_ENV.map((k): [string, string] => [`env:${k}`, env[k] === undefined ? '\0unset' : env[k]]),
      ['cc', fileIdentity(which('cc', env.PATH ?? ''))],
      ['host', `${process.arch} uid ${process.getuid?.()} ${canonicalRootConditions()}`],
      ['node', `${process.version} zlib ${process.versions.zlib}`],
      ['self', buildIdentity()],
    ];
    return sha256Text(parts.map(([k, v]) => `${k}\0${v.length}\0${v}`).join('\0'));
  } catch {
    return undefined;
  }
}

/** An image the build left in the engine: its id (config digest) under every one of its references. */
export interface LoadedImage {
  id: string;
  refs: string[];
}

export interface Stamp {
  version: 2;
  /** The final steps' cache entries, which must still pass the store's check. */
  entries: { dir: string; key: string }[];
  /** The default command line: what must still be in the engine. */
  images: LoadedImage[];
  /** What the build printed on stdout. */
  stdout: string;
}

function stampPath(b: SimpleBuild, fp: string): string {
  return join(b.cacheDir, 'stamps', `${fp}.json`);
}

/**
 * Writes the stamp of a finished build of `argv` (when the fast path can read that command line); a default
 * command line that loaded nothing (no engine answered) gets none: its output depends on the engine.
 */
export function recordStamp(argv: readonly string[], env: NodeJS.ProcessEnv, stamp: Omit<Stamp, 'version'>): void {
  const b = parseSimpleBuild(argv, env);
  if (!b || (b.load === 'default' && stamp.images.length === 0)) return;
  if (b.load === 'no' && stamp.images.length > 0) return;
  const fp = fingerprint(b, env);
  if (fp) writeFileAtomicSync(stampPath(b, fp), JSON.stringify({ version: 2, ...stamp } satisfies Stamp));
}

/** Where the fast path writes: the CLI's stdout and stderr, or a test's buffers. */
export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const processOutput: Output = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** Answers a fully cached build from its stamp; the exit code, or undefined to run the full CLI. */
export async function tryFastPath(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  io: Output = processOutput,
): Promise<number | undefined> {
  if (env.NABLA_BUILD_NO_FAST_PATH) return undefined;
  const b = parseSimpleBuild(argv, env);
  if (!b) return undefined;
  const fp = fingerprint(b, env);
  if (!fp) return undefined;
  let stamp: Stamp;
  try {
    stamp = JSON.parse(readFileSync(stampPath(b, fp), 'utf8')) as Stamp;
  } catch {
    return undefined;
  }
  if (stamp.version !== 2 || (b.load === 'default') !== stamp.images.length > 0) return undefined;
  // Every entry and every tag, asked at once.
  const checks = await Promise.all([
    ...stamp.entries.map(async (e) => (await readIntactEntry(e.dir, e.key)) !== undefined),
    ...stamp.images.flatMap((image) => image.refs.map(async (ref) => (await engineImageId(ref, env)) === image.id)),
  ]);
  if (checks.includes(false)) return undefined;
  io.out(stamp.stdout);
  const loaded = stamp.images.length ? `, loaded under all ${stamp.images.flatMap((i) => i.refs).length} tags` : '';
  io.err(
    `nabla-build: ${b.targets.join(' ')} up to date (${stamp.entries.length} cached images${loaded}, nothing to do)\n`,
  );
  return 0;
}

/**
 * The id of the image `ref` names in the engine DOCKER_HOST names (the default socket when unset), as
 * dockerode would reach it; undefined when it has no such image, does not answer within a second, or is
 * reached some other way (TLS, ssh: left to the full CLI).
 */
function engineImageId(ref: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const host = env.DOCKER_HOST || 'unix:///var/run/docker.sock';
  const path = `/images/${ref}/json`;
  let target: { socketPath: string } | { host: string; port: number };
  if (host.startsWith('unix://')) target = { socketPath: host.slice('unix://'.length) };
  else {
    const m = /^tcp:\/\/([^:/]+):(\d+)\/?$/.exec(host);
    if (!m || env.DOCKER_TLS_VERIFY || env.DOCKER_CERT_PATH) return Promise.resolve(undefined);
    target = { host: m[1] as string, port: Number(m[2]) };
  }
  return new Promise((resolve) => {
    const req = request({ ...target, path, method: 'GET', timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        body += c;
      });
      res.on('end', () => {
        try {
          resolve(res.statusCode === 200 ? (JSON.parse(body) as { Id?: string }).Id : undefined);
        } catch {
          resolve(undefined);
        }
      });
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

function which(cmd: string, path: string): string | undefined {
  for (const d of path.split(delimiter)) {
    const p = join(d, cmd);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

/**
 * What decides whether the canonical build root can be used (toolchain/canonical-root.ts probes it by running
 * it; a host fact of every toolchain and package key): /mnt, and the kernel's user-namespace switches.
 */
function canonicalRootConditions(): string {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8').trim();
    } catch {
      return '-';
    }
  };
  return [
    existsSync('/mnt') ? 'mnt' : 'no-mnt',
    read('/proc/sys/kernel/unprivileged_userns_clone'),
    read('/proc/sys/user/max_user_namespaces'),
    read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns'),
  ].join(' ');
}
