import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Lockfile, type MirrorRule, type RecipeSet, UsageError } from '@nabla-build/model';
import { emptyConfig, loadConfig, loadRecipes, type UserConfig } from '@nabla-build/recipes';
import { mirrorsFromEnv, parseMirrorSpec, readLockfile, validateMirrorRules } from '@nabla-build/sources';
import { cacheDirSetting, configPathSetting, recipesDirSetting } from './settings/paths.js';

/** Global options, as yargs parses them. Read once here; nothing below the CLI reads env or flags. */
export interface GlobalArgs {
  cacheDir?: string;
  jobs?: number;
  verbose?: boolean;
  config?: string;
  mirror?: string[];
  recipes?: string;
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
  recipesDir: string;
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

/** The repository this CLI was installed from: its recipes/ and patches/ are the shipped data. */
export function installRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
}

export function resolveSettings(args: GlobalArgs, env: NodeJS.ProcessEnv = process.env): Settings {
  // Every path setting is validated here (settings/paths.ts): empty or relative values are usage errors.
  const recipesDir = recipesDirSetting(args.recipes, env, () => join(installRoot(), 'recipes')).path;
  const configSetting = configPathSetting(args.config, env);
  if (configSetting.required && !existsSync(configSetting.path))
    throw new UsageError('setting.config-missing', `the config file ${configSetting.path} does not exist`, {
      where: configSetting.setting,
      hint: configSetting.setting.startsWith('-')
        ? `create it, or drop ${configSetting.setting}`
        : `create it, or unset ${configSetting.setting}`,
    });
  const config = existsSync(configSetting.path) ? loadConfig(configSetting.path) : emptyConfig();
  const cache = cacheDirSetting(args.cacheDir, env);
  const mirrors = [
    ...config.mirrors,
    ...mirrorsFromEnv(env),
    ...(args.mirror ?? []).map((m) => parseMirrorSpec(m, '--mirror')),
  ];
  return {
    cacheDir: cache.path,
    cacheSetting: cache.setting,
    jobs: args.jobs ?? defaultJobs(),
    verbose: args.verbose ?? false,
    json: args.json ?? false,
    offline: args.offline ?? false,
    unlocked: args.unlocked ?? false,
    config,
    mirrors,
    recipesDir,
    patchesDir: join(recipesDir, '..', 'patches'),
    lockPath: join(recipesDir, 'nabla.lock'),
    insecureRegistries: (env.NABLA_BUILD_INSECURE_REGISTRIES ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  };
}

export async function loadProject(args: GlobalArgs): Promise<Project> {
  const settings = resolveSettings(args);
  const recipes = loadRecipes(settings.recipesDir, settings.patchesDir);
  // Mirror rules are checked before anything runs (local paths need `allowLocal`).
  validateMirrorRules(settings.mirrors, { allowLocal: settings.config.allowLocal });
  const lock = settings.unlocked ? undefined : await readLockfile(settings.lockPath);
  // The cache exists, is marked as ours and is owner-only before any step writes to it.
  const { openCache } = await import('@nabla-build/engine');
  await openCache(settings.cacheDir, settings.cacheSetting);
  return { settings, recipes, lock };
}

function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}
