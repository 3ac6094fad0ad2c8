/**
 * Every setting nabla-build reads, where it can come from, and what it means: the single list behind
 * `nabla-build config`, the environment list of `--help` and the README's settings table (a test compares
 * them). Node built-ins only: the up-to-date check (fast-path.ts) uses it before anything else is loaded.
 *
 * Layers, lowest precedence first: built-in default → project file (`nabla-build.yaml` in the working
 * directory or the nearest parent) → user config (`$XDG_CONFIG_HOME/nabla-build/config.yaml`,
 * `NABLA_BUILD_CONFIG` or `--config`) → environment → command-line flags. List settings (mirrors, recipes)
 * accumulate across layers instead of replacing each other.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

export interface SettingDef {
  /** Name shown by `nabla-build config` and in the README table. */
  name: string;
  env?: string;
  flag?: string;
  /** Key in nabla-build.yaml and the user config. */
  config?: string;
  describe: string;
  /** Shown masked by `nabla-build config`. */
  secret?: boolean;
}

export const PROJECT_CONFIG_FILE = 'nabla-build.yaml';

export const SETTINGS: readonly SettingDef[] = Object.freeze([
  {
    name: 'cacheDir',
    env: 'NABLA_BUILD_CACHE',
    flag: '--cache-dir',
    config: 'cacheDir',
    describe: 'cache directory (default $XDG_CACHE_HOME/nabla-build)',
  },
  {
    name: 'userConfig',
    env: 'NABLA_BUILD_CONFIG',
    flag: '--config',
    describe: 'user config (default $XDG_CONFIG_HOME/nabla-build/config.yaml)',
  },
  {
    name: 'projectConfig',
    describe: `${PROJECT_CONFIG_FILE} in the working directory or the nearest parent (found, not set)`,
  },
  {
    name: 'recipes',
    env: 'NABLA_BUILD_RECIPES',
    flag: '--recipes',
    config: 'recipes',
    describe: 'recipe directories over the shipped recipes/ (later ones win)',
  },
  {
    name: 'mirrors',
    env: 'NABLA_BUILD_MIRRORS',
    flag: '--mirror',
    config: 'mirrors',
    describe: 'URL prefix rewrites PREFIX=REPLACEMENT (comma-separated)',
  },
  { name: 'allowLocal', config: 'allowLocal', describe: 'allow file:// and local-path mirrors and sources' },
  { name: 'overrides', config: 'overrides', describe: 'build another commit or fork of a source' },
  {
    name: 'repo',
    env: 'NABLA_BUILD_REPO',
    config: 'repo',
    describe: 'default image repository registry[/namespace] (KO_DOCKER_REPO)',
  },
  { name: 'registry', flag: '--registry', config: 'registry', describe: 'registry host of image names' },
  { name: 'namespace', flag: '--namespace', config: 'namespace', describe: 'registry namespace of image names' },
  {
    name: 'insecureRegistries',
    env: 'NABLA_BUILD_INSECURE_REGISTRIES',
    config: 'insecureRegistries',
    describe: 'registries reached over plain HTTP (comma-separated)',
  },
  {
    name: 'progress',
    env: 'NABLA_BUILD_PROGRESS',
    flag: '--progress',
    config: 'progress',
    describe: 'auto | tty | plain | quiet (--quiet: also no summary)',
  },
  {
    name: 'cacheFrom',
    env: 'NABLA_BUILD_CACHE_FROM',
    flag: '--cache-from',
    config: 'cacheFrom',
    describe: 'shared step caches to read from (comma-separated)',
  },
  {
    name: 'cacheTo',
    env: 'NABLA_BUILD_CACHE_TO',
    flag: '--cache-to',
    config: 'cacheTo',
    describe: 'shared step caches to publish built steps to (comma-separated)',
  },
  {
    name: 'passEnv',
    env: 'NABLA_BUILD_PASS_ENV',
    describe: 'variables builds may see (NAME or PREFIX*, comma-separated)',
  },
  {
    name: 'heartbeatSeconds',
    env: 'NABLA_BUILD_HEARTBEAT_SECONDS',
    describe: 'how often plain progress reports a running step (default 60)',
  },
  { name: 'jobs', flag: '--jobs', describe: 'steps at once, and -j of native builds (default: CPU count)' },
  { name: 'offline', flag: '--offline', describe: 'never touch the network' },
  { name: 'unlocked', flag: '--unlocked', describe: 'use recipe pins without the lockfile' },
  { name: 'verbose', flag: '--verbose', describe: 'stream build output; stack traces on errors' },
  { name: 'registryUser', env: 'NABLA_REGISTRY_USER', describe: 'registry user name (CI)' },
  { name: 'registryPassword', env: 'NABLA_REGISTRY_PASSWORD', describe: 'registry password (CI)', secret: true },
  {
    name: 'registryHost',
    env: 'NABLA_REGISTRY_HOST',
    describe: 'the only registry NABLA_REGISTRY_USER/PASSWORD are for',
  },
  { name: 'dockerHost', env: 'DOCKER_HOST', describe: 'Docker engine to load images into' },
  { name: 'dockerConfig', env: 'DOCKER_CONFIG', describe: 'directory of config.json with registry credentials' },
  {
    name: 'canonicalRoot',
    env: 'NABLA_BUILD_CANONICAL_ROOT',
    describe: 'off: build outside a canonical build root',
  },
  { name: 'sourceDateEpoch', env: 'SOURCE_DATE_EPOCH', describe: 'image creation time (default: newest commit)' },
  { name: 'noFastPath', env: 'NABLA_BUILD_NO_FAST_PATH', describe: 'set: never answer from the up-to-date check' },
  { name: 'traceExec', env: 'NABLA_BUILD_TRACE_EXEC', describe: 'file to append every spawned command to' },
  { name: 'ci', env: 'CI', describe: 'set: plain progress lines (as --progress plain)' },
  { name: 'noColor', env: 'NO_COLOR', describe: 'set: no colours' },
  { name: 'xdgCacheHome', env: 'XDG_CACHE_HOME', describe: 'base of the default cache directory' },
  { name: 'xdgConfigHome', env: 'XDG_CONFIG_HOME', describe: 'base of the default user config' },
]);

export const PROGRESS_MODES = ['auto', 'tty', 'plain', 'quiet'] as const;
export type ProgressMode = (typeof PROGRESS_MODES)[number];

/** `nabla-build.yaml` in `cwd` or the nearest parent directory, if any. */
export function findProjectConfig(cwd: string = process.cwd()): string | undefined {
  let dir = resolve(cwd);
  for (;;) {
    const p = join(dir, PROJECT_CONFIG_FILE);
    if (existsSync(p) && statSync(p).isFile()) return p;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The `--help` epilog: every variable nabla-build reads. */
export function environmentHelp(): string {
  const rows = SETTINGS.filter((s) => s.env).map((s) => [s.env as string, s.describe]);
  const w = Math.max(...rows.map((r) => (r[0] as string).length));
  return [
    'Environment:',
    ...rows.map(([k, d]) => `  ${(k as string).padEnd(w)}  ${d}`),
    '',
    'Settings, lowest precedence first: defaults, nabla-build.yaml (this directory or a parent),',
    'user config, environment, flags. `nabla-build config` shows each one and where it came from.',
  ].join('\n');
}
