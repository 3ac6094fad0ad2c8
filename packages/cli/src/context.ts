import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { InputFileError, type Lockfile, type MirrorRule, type RecipeSet, UsageError } from '@nabla-build/model';
import type { UserConfig } from '@nabla-build/recipes';
// The URL rules alone: resolving settings (and the up-to-date check) loads no git or YAML library.
import { mirrorsFromEnv, parseMirrorSpec, validateMirrorRules } from '@nabla-build/sources/mirror-rules';
import { cachedHostFacts } from './host-sources.js';
import { findProjectConfig, type ProgressMode } from './settings/catalog.js';
import { type ConfigFile, layerSettings, overlayLock } from './settings/layers.js';
import { parsedOnce, recipeFiles } from './settings/parsed.js';
import { traceSpawnsTo } from '@nabla-build/exec';
import { CANONICAL_ROOT_ENV, useCanonicalRoot } from '@nabla-build/toolchain/canonical-root';
import { PASS_ENV_VARIABLE, passEnvMatchers } from '@nabla-build/toolchain/env';
import { cacheDirSetting, checkPathSetting, configPathSetting, installRoot } from './settings/paths.js';
import { checkSourceDateEpoch } from './settings/values.js';

/** Global options, as yargs parses them. Read once here; nothing below the CLI reads env or flags. */
export interface GlobalArgs {
  cacheDir?: string;
  jobs?: number;
  verbose?: boolean;
  config?: string;
  mirror?: string[];
  /** Repeatable: later directories add or replace recipes (overlays). */
  recipes?: string | string[];
  progress?: string;
  quiet?: boolean;
  offline?: boolean;
  unlocked?: boolean;
  json?: boolean;
}

export interface Settings {
  cacheDir: string;
  /** Where cacheDir came from (`--cache-dir`, `NABLA_BUILD_CACHE`, `default`), for messages. */
  cacheSetting: string;
  jobs: number;
  verbose: boolean;
  json: boolean;
  offline: boolean;
  unlocked: boolean;
  config: UserConfig;
  /** Config file mirrors, then NABLA_BUILD_MIRRORS, then --mirror: later rules are more specific to this run. */
  mirrors: MirrorRule[];
  /** The base recipe directory (shipped, or a complete recipe set): its ../patches and nabla.lock are used. */
  recipesDir: string;
  /** The base, then the overlays laid over it in order. */
  recipesDirs: string[];
  /** nabla-build.yaml found in the working directory or a parent. */
  projectConfig?: string;
  /** The user config file (whether or not it exists). */
  userConfig: string;
  progress: ProgressMode;
  /** --quiet: no progress, no summary; results and errors only. */
  quiet: boolean;
  /** Setting name → where its value came from (for `nabla-build config`). */
  origins: Record<string, string>;
  patchesDir: string;
  lockPath: string;
  /** Registries reached over plain HTTP (loopback ones always are): NABLA_BUILD_INSECURE_REGISTRIES. */
  insecureRegistries: string[];
}

export interface Project {
  settings: Settings;
  recipes: RecipeSet;
  /** Undefined with --unlocked. */
  lock: Lockfile | undefined;
}

export async function resolveSettings(args: GlobalArgs, env: NodeJS.ProcessEnv = process.env): Promise<Settings> {
  // Every path setting is validated here (settings/paths.ts): empty or relative values are usage errors.
  const configSetting = configPathSetting(args.config, env);
  if (configSetting.required && !existsSync(configSetting.path))
    throw new UsageError('setting.config-missing', `the config file ${configSetting.path} does not exist`, {
      where: configSetting.setting,
      hint: configSetting.setting.startsWith('-')
        ? `create it, or drop ${configSetting.setting}`
        : `create it, or unset ${configSetting.setting}`,
    });
  let cache = cacheDirSetting(args.cacheDir, env);
  // Parsed config files are kept in the cache the flag, the environment or the default names.
  const configFile = async (path: string | undefined): Promise<ConfigFile | undefined> =>
    path && existsSync(path)
      ? {
          path,
          config: await parsedOnce(
            cache.path,
            'config',
            () => [path],
            async () => (await import('@nabla-build/recipes')).loadConfig(path),
          ),
        }
      : undefined;
  // Project file < user config < environment < flags (settings/catalog.ts).
  const [project, user] = await Promise.all([configFile(findProjectConfig()), configFile(configSetting.path)]);
  const layered = layerSettings(
    args,
    env,
    { project, user },
    { path: join(installRoot(), 'recipes'), setting: 'default' },
  );
  const { config } = layered;
  const recipesDir = layered.recipesDirs[0] as string;
  passEnvMatchers(env[PASS_ENV_VARIABLE]); // a malformed NABLA_BUILD_PASS_ENV fails now, not in the first build
  checkSourceDateEpoch(env); // a bad value fails now, not when the first image is assembled
  if (cache.setting === 'default' && config.cacheDir)
    cache = {
      path: checkPathSetting(layered.origins.cacheDir ?? 'config cacheDir', config.cacheDir) as string,
      setting: layered.origins.cacheDir ?? 'config',
    };
  const origins: Record<string, string> = {
    ...layered.origins,
    cacheDir: cache.setting,
    userConfig: configSetting.setting,
  };
  if (env.NABLA_BUILD_MIRRORS) origins.mirrors = [origins.mirrors, 'NABLA_BUILD_MIRRORS'].filter(Boolean).join(' + ');
  if (args.mirror?.length) origins.mirrors = [origins.mirrors, '--mirror'].filter(Boolean).join(' + ');
  const mirrors = [
    ...config.mirrors,
    ...mirrorsFromEnv(env),
    ...(args.mirror ?? []).map((m) => parseMirrorSpec(m, '--mirror')),
  ];
  return {
    cacheDir: cache.path,
    cacheSetting: cache.setting,
    jobs: args.jobs ?? Math.max(1, availableParallelism()),
    verbose: args.verbose ?? false,
    json: args.json ?? false,
    offline: args.offline ?? false,
    unlocked: args.unlocked ?? false,
    config,
    mirrors,
    recipesDir,
    recipesDirs: layered.recipesDirs,
    ...(layered.projectConfig ? { projectConfig: layered.projectConfig } : {}),
    userConfig: configSetting.path,
    progress: layered.progress,
    quiet: layered.quiet,
    origins,
    patchesDir: join(recipesDir, '..', 'patches'),
    lockPath: join(recipesDir, 'nabla.lock'),
    insecureRegistries: layered.insecureRegistries,
  };
}

/**
 * `runsGit: false`: a command that fetches nothing (list, plan), which then never loads the git library.
 * `plans: true`: a command that plans; the host probe (planning's input) starts before the recipes are parsed.
 */
export async function loadProject(
  args: GlobalArgs,
  opts: { runsGit?: boolean; plans?: boolean } = {},
): Promise<Project> {
  const settings = await resolveSettings(args);
  // Only the CLI reads the environment: the switches of the lower packages are passed in here.
  traceSpawnsTo(process.env.NABLA_BUILD_TRACE_EXEC);
  useCanonicalRoot(process.env[CANONICAL_ROOT_ENV] !== 'off');
  // A failed probe is reported where the plan awaits it.
  if (opts.plans) cachedHostFacts(settings.cacheDir).catch(() => undefined);
  if (opts.runsGit !== false) (await import('@nabla-build/sources')).useGitEnvironment(process.env);
  const recipes = await readRecipes(settings);
  checkOverrides(settings.config, recipes);
  // Mirror rules are checked before anything runs (local paths need `allowLocal`).
  validateMirrorRules(settings.mirrors, { allowLocal: settings.config.allowLocal });
  const baseLock = settings.unlocked
    ? undefined
    : await parsedOnce(
        settings.cacheDir,
        'lockfile',
        () => [settings.lockPath],
        async () => (await import('@nabla-build/sources')).readLockfile(settings.lockPath),
      );
  // Overlays carry no lockfile: their sources are pinned by their recipes (full commits, sha256).
  const lock =
    baseLock && settings.recipesDirs.length > 1 ? await overlayLock(baseLock, settings.recipesDirs.slice(1)) : baseLock;
  if (lock) {
    const { checkPatchLock } = await import('./lock-check.js');
    await checkPatchLock(recipes, lock, {
      patchesDir: settings.patchesDir,
      lockPath: settings.lockPath,
      overlays: settings.recipesDirs.length > 1,
    });
  }
  // The cache exists, is marked as ours and is owner-only before any step writes to it.
  const { openCache } = await import('@nabla-build/engine/store');
  await openCache(settings.cacheDir, settings.cacheSetting);
  return { settings, recipes, lock };
}

/** The recipes of these settings, validated (read back parsed when their files did not change). */
export function readRecipes(settings: Settings): Promise<RecipeSet> {
  return parsedOnce(
    settings.cacheDir,
    `recipes ${settings.patchesDir}`,
    () => recipeFiles(settings.recipesDirs),
    async () => (await import('@nabla-build/recipes')).loadRecipes(settings.recipesDirs, settings.patchesDir),
  );
}

/** An override must name a source some recipe declares (`name` or `name/submodule/path`): a typo is an error. */
function checkOverrides(config: UserConfig, recipes: RecipeSet): void {
  const names = new Set<string>();
  for (const r of [...recipes.toolchains.values(), ...recipes.targets.values()])
    for (const src of r.sources) names.add(src.name);
  for (const t of recipes.toolchains.values()) names.add(t.tree);
  for (const key of Object.keys(config.overrides)) {
    const source = key.split('/')[0] as string;
    if (names.has(source)) continue;
    const origin = config.overrideOrigins?.[key] ?? 'config';
    const m = /^(.*):(\d+)$/.exec(origin);
    throw new InputFileError(
      m ? (m[1] as string) : origin,
      m ? Number(m[2]) : undefined,
      `overrides.${key}`,
      `no recipe has a source named ${JSON.stringify(source)}`,
      `sources are: ${[...names].sort().join(', ')}`,
    );
  }
}
