import { existsSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Lockfile, MirrorRule, RecipeSet } from '@nabla-build/model';
import { emptyConfig, loadConfig, loadRecipes, type UserConfig } from '@nabla-build/recipes';
import { mirrorsFromEnv, parseMirrorSpec, readLockfile, validateMirrorRules } from '@nabla-build/sources';

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
  const recipesDir = resolve(args.recipes ?? env.NABLA_BUILD_RECIPES ?? join(installRoot(), 'recipes'));
  const configPath = args.config ?? env.NABLA_BUILD_CONFIG ?? defaultConfigPath(env);
  const config = configPath && existsSync(configPath) ? loadConfig(configPath) : emptyConfig();
  if (args.config && !existsSync(args.config)) loadConfig(args.config); // throws the "cannot read" error
  const mirrors = [
    ...config.mirrors,
    ...mirrorsFromEnv(env),
    ...(args.mirror ?? []).map((m) => parseMirrorSpec(m, '--mirror')),
  ];
  return {
    cacheDir: resolve(
      args.cacheDir ?? env.NABLA_BUILD_CACHE ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'nabla-build'),
    ),
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
  return { settings, recipes, lock };
}

function defaultConfigPath(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'nabla-build', 'config.yaml');
}

function defaultJobs(): number {
  return Math.max(1, availableParallelism());
}
