import type { Lockfile, SourceSpec } from '@nabla-build/model';
import { readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import type { CommandResult } from './result.js';
import { note } from '../output.js';
import { pinFromRecipe } from '../settings/layers.js';

interface LockArgs extends GlobalArgs {
  update?: string[];
  check?: boolean;
  verify?: boolean;
}

/**
 * Writes recipes/nabla.lock: every git source (and submodule) at a full commit, every tarball with its sha256,
 * every project patch with its digest. Pins are checked against their remotes (through mirrors), so a pin
 * that no longer exists is found here, not in the middle of a build.
 */
export function lockCommand(result: CommandResult): CommandModule<object, LockArgs> {
  return {
    command: 'lock',
    describe: 'resolve and record every source pin, tarball checksum and patch digest in recipes/nabla.lock',
    builder: (y) =>
      y
        .option('update', {
          type: 'string',
          array: true,
          describe: 'move these git sources to the tip of their branch',
        })
        .option('check', { type: 'boolean', describe: 'exit 1 if the lockfile is not up to date (writes nothing)' })
        .option('verify', {
          type: 'boolean',
          default: true,
          describe: 'check every pin against its remote (--no-verify: record the recipe pins as they are)',
        }) as never,
    handler: async (args) => {
      const [
        { loadProject },
        { listSeries, seriesDigest },
        { formatLockfile, lockSources, writeLockfile },
        { resolveSource },
      ] = await Promise.all([
        import('../context.js'),
        import('@nabla-build/patches'),
        import('@nabla-build/sources'),
        import('@nabla-build/plan'),
      ]);
      const project = await loadProject({ ...args, unlocked: true });
      const { settings } = project;
      // The lockfile is the base recipe set's: overlays (nabla-build.yaml `recipes:`, more --recipes) are
      // pinned by their own recipes and never written into it.
      const recipes =
        settings.recipesDirs.length > 1
          ? (await import('@nabla-build/recipes')).loadRecipes(settings.recipesDir, settings.patchesDir)
          : project.recipes;
      const specs: SourceSpec[] = [];
      for (const r of [...recipes.toolchains.values(), ...recipes.targets.values()]) specs.push(...r.sources);
      const resolved =
        args.verify === false
          ? fromRecipes(specs)
          : await lockSources(
              // Resolved as a build plans them (overrides applied), without the lockfile this writes.
              specs.map((s) => resolveSource(s, undefined, settings.config.overrides)),
              {
                cacheDir: settings.cacheDir,
                mirrors: settings.mirrors,
                allowLocal: settings.config.allowLocal,
                offline: settings.offline,
                onProgress: (l) => settings.verbose && note(l),
              },
              args.update?.length ? { update: args.update } : {},
            );
      const patches: Record<string, string> = {};
      const root = join(settings.patchesDir, '..');
      for (const r of [...recipes.toolchains.values(), ...recipes.targets.values()]) {
        for (const s of r.patches.filter((p) => p.from === 'project')) {
          for (const p of await listSeries(join(settings.patchesDir, s.dir)))
            patches[relative(root, p.path)] = await seriesDigest([p]);
        }
      }
      const lock: Lockfile = { version: 1, git: resolved.git, tarballs: resolved.tarballs, patches };
      const text = formatLockfile(lock);
      const current = await readFile(settings.lockPath, 'utf8').catch(() => '');
      // Overrides (config) replace pins on purpose: they are never the lockfile's business.
      const overridden = args.verify === false ? [] : Object.keys(settings.config.overrides ?? {}).sort();
      if (args.check) {
        if (current === text) note(`${settings.lockPath} is up to date`);
        else if (overridden.length > 0) {
          const { parseLockfile } = await import('@nabla-build/sources');
          let recorded: Lockfile | undefined;
          try {
            recorded = parseLockfile(current, settings.lockPath);
          } catch {
            // Unreadable: out of date.
          }
          const same = recorded !== undefined && formatLockfile(maskOverridden(lock, recorded, overridden)) === current;
          const active = `overrides are active (${overridden.join(', ')}; from the config): their pins come from the config and are not compared with the lockfile`;
          result.exitCode = same ? 0 : 1;
          note(
            same
              ? `${settings.lockPath} is up to date for every source that is not overridden; ${active}`
              : `${settings.lockPath} is out of date apart from the overridden sources: run \`nabla-build lock\` without the overrides (another --config); ${active}`,
          );
        } else {
          result.exitCode = 1;
          note(`${settings.lockPath} is out of date: run \`nabla-build lock\``);
        }
        return;
      }
      if (overridden.length > 0 && current !== text)
        note(
          `warning: overrides are active (${overridden.join(', ')}): the lockfile now records their pins; run \`nabla-build lock\` without them to record the recipes' pins`,
        );
      if (current !== text) await writeLockfile(settings.lockPath, lock);
      for (const u of resolved.updated) note(`${u.name}: ${u.from.slice(0, 12)} → ${u.to.slice(0, 12)} (${u.ref})`);
      note(current === text ? `${settings.lockPath} unchanged` : `wrote ${settings.lockPath}`);
    },
  };
}

/** The lock as the recipes state it, without asking any remote (`--no-verify`: offline machines, CI checks). */
function fromRecipes(specs: SourceSpec[]): Pick<Lockfile, 'git' | 'tarballs'> & { updated: [] } {
  const lock: Lockfile = { version: 1, git: {}, tarballs: {}, patches: {} };
  for (const s of specs) pinFromRecipe(s, lock);
  return { ...lock, updated: [] };
}

/**
 * `lock` with every overridden entry (a source, or a source's submodule `<source>/<path>`) taken from `recorded`
 * instead, so that what overrides change is left out of the comparison.
 */
export function maskOverridden(lock: Lockfile, recorded: Lockfile, overridden: string[]): Lockfile {
  const git: Lockfile['git'] = {};
  for (const [name, entry] of Object.entries(lock.git)) {
    const old = recorded.git[name];
    if (overridden.includes(name)) {
      if (old) git[name] = old;
      else git[name] = entry;
      continue;
    }
    const submodules = { ...entry.submodules };
    for (const path of Object.keys(submodules)) {
      const prev = old?.submodules[path];
      if (overridden.includes(`${name}/${path}`) && prev) submodules[path] = prev;
    }
    git[name] = { ...entry, submodules };
  }
  const tarballs: Lockfile['tarballs'] = {};
  for (const [name, entry] of Object.entries(lock.tarballs))
    tarballs[name] = overridden.includes(name) ? (recorded.tarballs[name] ?? entry) : entry;
  return { ...lock, git, tarballs };
}
