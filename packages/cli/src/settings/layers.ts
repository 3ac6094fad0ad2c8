import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { type Lockfile, type SubmoduleSpec, UsageError } from '@nabla-build/model';
import type { UserConfig } from '@nabla-build/recipes';
import { PROGRESS_MODES, type ProgressMode } from './catalog.js';
import { checkPathSetting } from './paths.js';

/**
 * The layers of settings (catalog.ts): project file, then user config, then environment, then flags. This
 * module merges the two config files and records where each effective value came from, for `nabla-build config`.
 */
export interface Layered {
  /** The project file and the user config merged (the user config wins; lists accumulate). */
  config: UserConfig;
  projectConfig?: string;
  /** Recipe directories, base first. */
  recipesDirs: string[];
  progress: ProgressMode;
  quiet: boolean;
  insecureRegistries: string[];
  /** Setting name → where its value came from (`default`, a file, `NABLA_BUILD_REPO`, `--progress`). */
  origins: Record<string, string>;
}

/** UserConfig keys merged explicitly below (and `keys`, which describes a single file). */
const MERGED_KEYS = new Set(['allowLocal', 'overrides', 'repo', 'keys']);

const REPO = /^[A-Za-z0-9.-]+(:[0-9]+)?(\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/;

/** `registry[/namespace…]` → registry and namespace; a first part that is not a host means Docker Hub. */
function parseRepo(repo: string, where: string): { registry: string; namespace?: string } {
  if (!REPO.test(repo))
    throw new UsageError('setting.repo', `${where}=${JSON.stringify(repo)}: expected registry[/namespace]`, {
      where,
      hint: 'e.g. ghcr.io/myorg, 127.0.0.1:5000/team or myuser (Docker Hub)',
    });
  const [first, ...rest] = repo.split('/') as [string, ...string[]];
  const host = first.includes('.') || first.includes(':') || first === 'localhost';
  if (!host) return { registry: 'docker.io', namespace: repo };
  return rest.length ? { registry: first, namespace: rest.join('/') } : { registry: first };
}

/** A config file as loaded (recipes' loadConfig), and where it is. */
export type ConfigFile = { config: UserConfig; path: string };

/**
 * Merges the project file and the user config (each when there is one), then the environment and flags for
 * the settings this module owns. `baseRecipes` is the directory the recipes start from.
 */
export function layerSettings(
  args: { recipes?: string | string[]; progress?: string; quiet?: boolean }, // GlobalArgs' (context.ts imports this file)
  env: NodeJS.ProcessEnv,
  files: { project: ConfigFile | undefined; user: ConfigFile | undefined },
  baseRecipes: { path: string; setting: string },
): Layered {
  const origins: Record<string, string> = {};
  const projectPath = files.project?.path;
  const layers = [files.project, files.user].flatMap((f) => (f ? [{ cfg: f.config, origin: f.path }] : []));
  const config: UserConfig = { mirrors: [], allowLocal: false, overrides: {} };
  const list = (name: string, from: string) => {
    origins[name] = origins[name] ? `${origins[name]} + ${from}` : from;
  };
  const setRepo = (repo: string, where: string, from: string) => {
    const r = parseRepo(repo, where);
    config.repo = repo;
    config.registry = r.registry;
    if (r.namespace) config.namespace = r.namespace;
    else delete config.namespace;
    origins.repo = origins.registry = origins.namespace = from;
  };
  for (const { cfg, origin } of layers) {
    const set = (k: string) => cfg.keys?.includes(k);
    if (set('allowLocal')) {
      config.allowLocal = cfg.allowLocal;
      origins.allowLocal = origin;
    }
    if (Object.keys(cfg.overrides).length) {
      Object.assign(config.overrides, cfg.overrides);
      config.overrideOrigins = { ...config.overrideOrigins, ...cfg.overrideOrigins };
      list('overrides', origin);
    }
    if (cfg.repo) setRepo(cfg.repo, `${origin}: repo`, origin);
    // The other keys (mirrors, registry, cacheDir, progress, cacheFrom, recipes…): later layers win, lists accumulate.
    for (const [k, v] of Object.entries(cfg)) {
      if (MERGED_KEYS.has(k) || v === undefined || (Array.isArray(v) && v.length === 0)) continue;
      const prior: unknown = Reflect.get(config, k);
      Object.assign(config, { [k]: Array.isArray(prior) && Array.isArray(v) ? [...prior, ...v] : v });
      if (Array.isArray(v)) list(k, origin);
      else origins[k] = origin;
    }
  }
  if (env.NABLA_BUILD_REPO) setRepo(env.NABLA_BUILD_REPO, 'NABLA_BUILD_REPO', 'NABLA_BUILD_REPO');

  // Recipes: the base (shipped, or a complete recipe set given first), then overlays from the project file,
  // the user config, NABLA_BUILD_RECIPES (':'-separated) and --recipes (repeatable), in that order.
  const fromFiles = origins.recipes ?? 'config';
  const given: { path: string; from: string }[] = (config.recipes ?? []).map((p) => ({ path: p, from: fromFiles }));
  const envDirs = (env.NABLA_BUILD_RECIPES ?? '').split(delimiter).filter((d) => d !== '');
  if (env.NABLA_BUILD_RECIPES !== undefined && envDirs.length === 0)
    checkPathSetting('NABLA_BUILD_RECIPES', env.NABLA_BUILD_RECIPES);
  for (const d of envDirs)
    given.push({ path: checkPathSetting('NABLA_BUILD_RECIPES', d) as string, from: 'NABLA_BUILD_RECIPES' });
  for (const d of [args.recipes ?? []].flat())
    given.push({ path: checkPathSetting('--recipes', d) as string, from: '--recipes' });
  const recipesDirs = [baseRecipes.path];
  for (const g of given) {
    // A complete recipe set (one with its own nabla.lock) given first replaces the shipped recipes.
    if (recipesDirs.length === 1 && recipesDirs[0] === baseRecipes.path && isCompleteSet(g.path)) {
      recipesDirs[0] = g.path;
    } else if (!recipesDirs.includes(g.path)) recipesDirs.push(g.path);
  }
  for (const d of recipesDirs) {
    if (!existsSync(d))
      throw new UsageError('setting.recipes-missing', `recipe directory ${d} does not exist`, {
        where: given.find((g) => g.path === d)?.from ?? 'recipes',
        hint: 'check --recipes, NABLA_BUILD_RECIPES and `recipes:` in nabla-build.yaml (`nabla-build config`)',
      });
  }
  origins.recipes = given.length ? [...new Set(given.map((g) => g.from))].join(' + ') : baseRecipes.setting;

  // Progress: config, then NABLA_BUILD_PROGRESS, then --progress, then --quiet.
  let progress: ProgressMode = config.progress ?? 'auto';
  if (!config.progress) origins.progress = 'default';
  const envProgress = env.NABLA_BUILD_PROGRESS;
  if (envProgress !== undefined && envProgress !== '') {
    progress = checkProgress(envProgress, 'NABLA_BUILD_PROGRESS');
    origins.progress = 'NABLA_BUILD_PROGRESS';
  }
  if (args.progress !== undefined) {
    progress = checkProgress(args.progress, '--progress');
    origins.progress = '--progress';
  }
  if (args.quiet) {
    progress = 'quiet';
    origins.progress = '--quiet';
  }
  const insecureRegistries = [
    ...(config.insecureRegistries ?? []),
    ...(env.NABLA_BUILD_INSECURE_REGISTRIES ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  ];
  if (env.NABLA_BUILD_INSECURE_REGISTRIES) list('insecureRegistries', 'NABLA_BUILD_INSECURE_REGISTRIES');
  return {
    config,
    ...(projectPath ? { projectConfig: projectPath } : {}),
    recipesDirs,
    progress,
    quiet: args.quiet ?? false,
    insecureRegistries,
    origins,
  };
}

function checkProgress(v: string, where: string): ProgressMode {
  if ((PROGRESS_MODES as readonly string[]).includes(v)) return v as ProgressMode;
  throw new UsageError('setting.progress', `${where}: "${v}" is not one of ${PROGRESS_MODES.join(', ')}`, {
    where,
    hint: `${where === '--progress' ? '--progress' : `${where}=`}plain`,
  });
}

/** A directory holding a whole recipe set (its own lockfile), as opposed to an overlay of a few recipes. */
function isCompleteSet(dir: string): boolean {
  return existsSync(join(dir, 'nabla.lock'));
}

/**
 * The lock of a layered recipe set: the base's lockfile, plus the sources the overlays define, pinned by their
 * recipes (a recipe's git `rev` is a full commit and its tarballs carry a sha256, so nothing is left open).
 * An overlay source with the name of a base source replaces its pin.
 */
export async function overlayLock(base: Lockfile, overlays: string[]): Promise<Lockfile> {
  const { parseRecipeFile } = await import('@nabla-build/recipes');
  const lock: Lockfile = {
    version: 1,
    git: { ...base.git },
    tarballs: { ...base.tarballs },
    patches: { ...base.patches },
  };
  for (const dir of overlays) {
    for (const f of readdirSync(dir).filter((n) => /\.ya?ml$/.test(n) && n !== 'nabla.lock')) {
      const parsed = parseRecipeFile(join(dir, f)).value;
      if (parsed.kind !== 'sources') continue;
      for (const s of parsed.sources) pinFromRecipe(s, lock);
    }
  }
  return lock;
}

type RecipeSource =
  | { name: string; git: string; rev: string; submodules?: SubmoduleSpec[] }
  | { name: string; urls: string[]; sha256: string };

/** Records a source's pin (its submodules' too) in `lock`, replacing any pin of that name. */
export function pinFromRecipe(s: RecipeSource, lock: Lockfile): void {
  if ('git' in s) {
    const submodules: Record<string, { git: string; rev: string }> = {};
    const walk = (list: SubmoduleSpec[] | undefined, prefix: string) => {
      for (const m of list ?? []) {
        submodules[prefix + m.path] = { git: m.git, rev: m.rev };
        walk(m.submodules, `${prefix}${m.path}/`);
      }
    };
    walk(s.submodules, '');
    lock.git[s.name] = { git: s.git, rev: s.rev, submodules };
    delete lock.tarballs[s.name];
  } else {
    lock.tarballs[s.name] = { url: s.urls[0] as string, sha256: s.sha256 };
    delete lock.git[s.name];
  }
}
