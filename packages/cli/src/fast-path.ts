/**
 * The up-to-date check for fully cached builds, made before anything heavy is loaded (it uses Node built-ins
 * only): like make's "nothing to be done", a rerun with unchanged inputs answers in about the time Node needs
 * to start, instead of loading yargs, parsing recipes and planning.
 *
 * A finished build writes a stamp `<cache>/stamps/<fingerprint>.json` naming the cache entries of its final
 * steps. The fingerprint covers every input of the plan: the command line, recipes (with the lockfile),
 * patches, the user config, the variables the CLI reads, the compiler (by its binary's identity), Node's zlib
 * and this build of nabla-build. A stamp is only trusted when every entry it names still passes the same quick
 * integrity check the engine does (manifest present, files present with their recorded sizes). Anything else
 * — another flag, a changed file, a missing entry — falls through to the full CLI.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findProjectConfig, PROGRESS_MODES } from './settings/catalog.js';

/** The only command lines the fast path understands: `[build] <target...>` plus these options. */
export interface SimpleBuild {
  targets: string[];
  cacheDir: string;
  recipesDir: string;
  configPath: string;
  jobs?: string;
  noLoad: boolean;
}

const TARGET = /^[a-z0-9][a-z0-9._-]*$/;

/** The variables the CLI reads that can change a plan (tracing and this check's own switch cannot). */
const PLAN_ENV = [
  'NABLA_BUILD_CONFIG',
  'NABLA_BUILD_RECIPES',
  'NABLA_BUILD_MIRRORS',
  'NABLA_BUILD_CACHE',
  'SOURCE_DATE_EPOCH',
  'PATH',
  'NABLA_BUILD_REPO',
];

/** The argv main() was called with (stamps are only written for command lines the fast path can read). */
export const invocation: { argv: string[] } = { argv: [] };
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
  'schema',
  'help',
]);

/** Parses argv when it is a plain build; undefined for anything else (the full CLI handles it). */
export function parseSimpleBuild(argv: string[], env: NodeJS.ProcessEnv = process.env): SimpleBuild | undefined {
  const targets: string[] = [];
  let cacheDir: string | undefined;
  let jobs: string | undefined;
  let noLoad = false;
  const args = argv[0] === 'build' ? argv.slice(1) : argv;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    if (a === '--cache-dir' && args[i + 1]) cacheDir = args[++i];
    else if ((a === '--jobs' || a === '-j') && args[i + 1] && /^[1-9]\d*$/.test(args[i + 1] as string))
      jobs = args[++i];
    else if (a === '--no-load') noLoad = true;
    else if (TARGET.test(a) && !COMMANDS.has(a)) targets.push(a);
    else return undefined;
  }
  // Without --no-load the default output depends on whether an engine answers: leave that to the CLI.
  if (targets.length === 0 || !noLoad) return undefined;
  // A shared cache to fill (--cache-to in the environment): the full CLI pushes what the build completes.
  if (env.NABLA_BUILD_CACHE_TO) return undefined;
  // An empty or relative path setting is a usage error the full CLI reports (settings/paths.ts).
  if (cacheDir !== undefined && !isAbsolute(cacheDir)) return undefined;
  for (const k of [
    'NABLA_BUILD_CACHE',
    'NABLA_BUILD_RECIPES',
    'NABLA_BUILD_CONFIG',
    'XDG_CACHE_HOME',
    'XDG_CONFIG_HOME',
  ])
    if (env[k] !== undefined && !isAbsolute(env[k] as string)) return undefined;
  if (env.NABLA_BUILD_CONFIG !== undefined && !existsSync(env.NABLA_BUILD_CONFIG)) return undefined;
  if (!layersAreSimple(env)) return undefined;
  const root = installRoot();
  return {
    targets: [...new Set(targets)].sort(),
    cacheDir: resolve(
      cacheDir ?? env.NABLA_BUILD_CACHE ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'nabla-build'),
    ),
    recipesDir: resolve(env.NABLA_BUILD_RECIPES ?? join(root, 'recipes')),
    configPath:
      env.NABLA_BUILD_CONFIG ?? join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'nabla-build', 'config.yaml'),
    ...(jobs ? { jobs } : {}),
    noLoad,
  };
}

/**
 * Recipe overlays, a project file (nabla-build.yaml) and recipe or cache directories set in the user config
 * are resolved by the full CLI (settings/layers.ts), and so are values it would refuse: the fast path declines
 * rather than fingerprint them.
 */
function layersAreSimple(env: NodeJS.ProcessEnv): boolean {
  const recipes = env.NABLA_BUILD_RECIPES;
  // One directory with its own nabla.lock replaces the shipped recipes; anything else is an overlay.
  if (recipes !== undefined && (recipes.includes(delimiter) || !existsSync(join(recipes, 'nabla.lock')))) return false;
  if (findProjectConfig()) return false;
  if (env.NABLA_BUILD_REPO) return false;
  if (env.NABLA_BUILD_PROGRESS && !(PROGRESS_MODES as readonly string[]).includes(env.NABLA_BUILD_PROGRESS))
    return false;
  const config =
    env.NABLA_BUILD_CONFIG ?? join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'nabla-build', 'config.yaml');
  try {
    // A shared cache to fill (cacheTo) means pushing what the build completes: the full CLI does that.
    if (/^["']?(recipes|cacheDir|cacheTo)["']?\s*:/m.test(readFileSync(config, 'utf8'))) return false;
  } catch {
    // no user config: nothing to resolve
  }
  return true;
}

/** Everything a plan depends on, hashed. `undefined` when something cannot be read (no fast path then). */
export function fingerprint(b: SimpleBuild, env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    const h = createHash('sha256');
    const add = (label: string, data: string | Buffer) => {
      h.update(`${label}\0${data.length}\0`);
      h.update(data);
    };
    add('targets', b.targets.join(' '));
    add('cache', b.cacheDir);
    for (const f of readdirSync(b.recipesDir).sort()) {
      const p = join(b.recipesDir, f);
      if (statSync(p).isFile()) add(`recipe:${f}`, readFileSync(p));
    }
    addTree(add, join(b.recipesDir, '..', 'patches'), 'patches');
    add('config', existsSync(b.configPath) ? readFileSync(b.configPath) : '');
    for (const k of PLAN_ENV) add(`env:${k}`, env[k] ?? '');
    add('cc', identity(which('cc', env.PATH ?? '')));
    add('node', `${process.version} zlib ${process.versions.zlib}`);
    add('self', selfIdentity());
    return h.digest('hex');
  } catch {
    return undefined;
  }
}

export interface Stamp {
  version: 1;
  /** Entry directories of the final steps, whose manifests must still check out. */
  entries: string[];
  /** What the build printed on stdout. */
  stdout: string;
}

export function stampPath(b: SimpleBuild, fp: string): string {
  return join(b.cacheDir, 'stamps', `${fp}.json`);
}

/** Writes the stamp of a finished build (atomically). */
export function writeStamp(b: SimpleBuild, fp: string, stamp: Stamp): void {
  const p = stampPath(b, fp);
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(`${p}.tmp-${process.pid}`, JSON.stringify(stamp));
  renameSync(`${p}.tmp-${process.pid}`, p);
}

/** Answers a fully cached build from its stamp; returns the exit code, or undefined to run the full CLI. */
export function tryFastPath(argv: string[], env: NodeJS.ProcessEnv = process.env): number | undefined {
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
  for (const dir of stamp.entries) if (!entryIntact(dir)) return undefined;
  process.stdout.write(stamp.stdout);
  process.stderr.write(
    `nabla-build: ${b.targets.join(' ')} up to date (${stamp.entries.length} cached images, nothing to do)\n`,
  );
  return 0;
}

/** The engine's quick check, on the manifest format of @nabla-build/engine's StepStore. */
function entryIntact(dir: string): boolean {
  try {
    const m = JSON.parse(readFileSync(join(dir, 'entry.json'), 'utf8')) as {
      files: { path: string; size: number; type: string }[];
    };
    for (const f of m.files) {
      const st = statSync(join(dir, f.path), { throwIfNoEntry: false });
      if (!st || (f.type === 'file' && st.size !== f.size)) return false;
    }
    return true;
  } catch {
    return false;
  }
}

function addTree(add: (label: string, data: string | Buffer) => void, dir: string, label: string): void {
  if (!existsSync(dir)) return;
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const p = join(dir, e.name);
    if (e.isDirectory()) addTree(add, p, `${label}/${e.name}`);
    else if (e.isFile()) add(`${label}/${e.name}`, readFileSync(p));
  }
}

function which(cmd: string, path: string): string | undefined {
  for (const d of path.split(delimiter)) {
    const p = join(d, cmd);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

function identity(p: string | undefined): string {
  if (!p) return 'none';
  const st = statSync(p);
  return `${p} ${st.ino} ${st.size} ${st.mtimeMs}`;
}

/** This installation of nabla-build: its compiled files' identities (a rebuild changes them). */
function selfIdentity(): string {
  const dist = dirname(fileURLToPath(import.meta.url));
  const root = installRoot();
  const parts = [identity(join(dist, 'main.js'))];
  for (const pkg of readdirSync(join(root, 'packages')).sort()) {
    const p = join(root, 'packages', pkg, 'dist', 'index.js');
    if (existsSync(p)) parts.push(identity(p));
  }
  return parts.join('\n');
}

function installRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}
