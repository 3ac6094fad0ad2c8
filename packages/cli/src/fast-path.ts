/**
 * The up-to-date check for fully cached builds, made before yargs and the planner are loaded: like make's
 * "nothing to be done", a rerun with unchanged inputs answers in about the time Node needs to start.
 *
 * A finished build writes a stamp `<cache>/stamps/<fingerprint>.json` naming the cache entries (directory and
 * key) of its final steps and, for the default command line, the images it left in the Docker engine. Settings
 * are resolved by the CLI's own resolveSettings (flags, environment, user config, project file, overlays), and
 * the fingerprint covers what the plan is computed from: the targets, the resolved settings, the recipe
 * directories and patches as trees, the config files, every variable of the settings catalog
 * (settings/catalog.ts: a variable the CLI reads is in the catalog, and so in the fingerprint — a test checks
 * both), the host facts' sources (the compiler binary, the architecture, the user and what decides the
 * canonical build root), Node and this build of nabla-build. An entry is trusted only when the engine's store
 * check passes (readIntactEntry: complete, same key, files of their recorded sizes); a loaded image only when
 * the engine still has it under every tag. Anything else — another flag, a changed file, a missing entry or
 * tag, an engine that does not answer — falls through to the full CLI.
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { readIntactEntry } from '@nabla-build/engine/store';
import { sha256Text, sha256Tree, writeFileAtomicSync } from '@nabla-build/fsio';
import { canonicalJson } from '@nabla-build/model';
import { type GlobalArgs, resolveSettings, type Settings } from './context.js';
import { SETTINGS } from './settings/catalog.js';
import { hostSources } from './host-sources.js';
import { buildIdentity } from './settings/parsed.js';

/** The only command lines the check understands: `[build] <target...>` plus the options below. */
export interface SimpleBuild {
  targets: string[];
  settings: Settings;
  /** `--no-load`, or the default output (load into the engine when one answers). */
  load: 'no' | 'default';
}

const TARGET = /^[a-z0-9][a-z0-9._-]*$/;
const COMMANDS = new Set(
  'list plan fetch lock doctor run test runtime clean cache config completion schema help'.split(' '),
);

/** Every variable the CLI reads (the catalog), but this check's own switch; and PATH, where `cc` is found. */
export const FINGERPRINT_ENV: readonly string[] = [
  ...SETTINGS.flatMap((s) => (s.env && s.name !== 'noFastPath' ? [s.env] : [])),
  'PATH',
];

/** The path options the check passes to resolveSettings, as the full CLI would. */
const PATH_OPTIONS: Record<string, 'cacheDir' | 'config' | 'recipes'> = {
  '--cache-dir': 'cacheDir',
  '--config': 'config',
  '--recipes': 'recipes',
};

/** Parses argv when it is a plain build and resolves its settings; undefined for anything else (the full CLI). */
export async function parseSimpleBuild(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<SimpleBuild | undefined> {
  const targets: string[] = [];
  const args: GlobalArgs = {};
  const recipes: string[] = [];
  let noLoad = false;
  const rest = argv[0] === 'build' ? argv.slice(1) : argv;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i] as string;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const option = PATH_OPTIONS[flag];
    if (option) {
      const value = inline ?? rest[++i];
      if (!value) return undefined;
      if (option === 'recipes') recipes.push(value);
      else args[option] = value;
    }
    // Steps at once and -j of native builds: neither is part of a key.
    else if ((a === '--jobs' || a === '-j') && /^[1-9]\d{0,2}$/.test(rest[i + 1] ?? '')) i++;
    else if (a === '--no-load') noLoad = true;
    else if (TARGET.test(a) && !COMMANDS.has(a)) targets.push(a);
    else return undefined;
  }
  if (targets.length === 0) return undefined;
  if (recipes.length) args.recipes = recipes;
  // A shared cache to fill: the full CLI pushes what the build completes.
  if (env.NABLA_BUILD_CACHE_TO) return undefined;
  try {
    // The CLI's own settings; a value it refuses is reported by the full CLI.
    const settings = await resolveSettings(args, env);
    if (settings.config.cacheTo?.length) return undefined;
    return { targets: [...new Set(targets)].sort(), settings, load: noLoad ? 'no' : 'default' };
  } catch {
    return undefined;
  }
}

/** Everything a plan depends on, hashed. `undefined` when something cannot be read (no fast path then). */
export function fingerprint(b: SimpleBuild, env: NodeJS.ProcessEnv): string | undefined {
  const s = b.settings;
  const file = (p: string | undefined) => (p && existsSync(p) ? `${p} ${sha256Text(readFileSync(p))}` : 'none');
  try {
    const parts: [string, string][] = [
      ['targets', b.targets.join(' ')],
      ['load', b.load],
      // What the plan reads of the settings; not how many jobs run, how progress is shown or where a value came from.
      [
        'settings',
        canonicalJson({ ...s, jobs: 0, verbose: false, progress: '', quiet: false, origins: {}, cacheSetting: '' }),
      ],
      ['recipes', s.recipesDirs.map((d) => `${d} ${sha256Tree(d)}`).join('\n')],
      ['patches', sha256Tree(s.patchesDir)],
      ['config', `${file(s.userConfig)}\n${file(s.projectConfig)}`],
      ...FINGERPRINT_ENV.map((k): [string, string] => [`env:${k}`, env[k] === undefined ? '\0unset' : env[k]]),
      ['host', hostSources(env)],
      ['node', `${process.version} zlib ${process.versions.zlib}`],
      ['self', buildIdentity()],
    ];
    return sha256Text(parts.map(([k, v]) => `${k}\0${v.length}\0${v}`).join('\0'));
  } catch {
    return undefined;
  }
}

export interface Stamp {
  version: 2;
  /** The final steps' cache entries, which must still pass the store's check. */
  entries: { dir: string; key: string }[];
  /** The default command line: the images it left in the engine, each id (config digest) under all its refs. */
  images: { id: string; refs: string[] }[];
  /** What the build printed on stdout. */
  stdout: string;
}

function stampPath(b: SimpleBuild, fp: string): string {
  return join(b.settings.cacheDir, 'stamps', `${fp}.json`);
}

/**
 * Writes the stamp of a finished build of `argv` (when the fast path can read that command line); a default
 * command line that loaded nothing (no engine answered) gets none: its output depends on the engine.
 */
export async function recordStamp(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  stamp: Omit<Stamp, 'version'>,
): Promise<void> {
  const b = await parseSimpleBuild(argv, env);
  if (!b || (b.load === 'default' && stamp.images.length === 0)) return;
  if (b.load === 'no' && stamp.images.length > 0) return;
  const fp = fingerprint(b, env);
  if (fp) writeFileAtomicSync(stampPath(b, fp), JSON.stringify({ version: 2, ...stamp } satisfies Stamp));
}

/**
 * Answers a fully cached build from its stamp; the exit code, or undefined to run the full CLI. `io`: the
 * CLI's stdout and stderr, or a test's buffers.
 */
export async function tryFastPath(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  io: { out(text: string): void; err(text: string): void } = {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  },
): Promise<number | undefined> {
  if (env.NABLA_BUILD_NO_FAST_PATH) return undefined;
  const b = await parseSimpleBuild(argv, env);
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
