import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { InputFileError, type Lockfile, type RecipeSet } from '@nabla-build/model';

/**
 * The lockfile's patch digests are enforced before anything runs: every patch of a project series the recipes
 * use must have an entry in `recipes/nabla.lock` with its exact digest, and an entry of such a series whose file
 * is gone is an error too. A patch edited after `nabla-build lock` cannot slip into a build unnoticed.
 */
export async function checkPatchLock(
  recipes: RecipeSet,
  lock: Lockfile,
  o: { patchesDir: string; lockPath: string; overlays: boolean },
): Promise<void> {
  const { listSeries, seriesDigest } = await import('@nabla-build/patches/series');
  const root = join(o.patchesDir, '..');
  const dirs = new Set<string>();
  for (const r of [...recipes.toolchains.values(), ...recipes.targets.values()])
    for (const s of r.patches) if (s.from === 'project') dirs.add(s.dir);
  const fix = 'review the patch, then run `nabla-build lock` to record it (or build with --unlocked)';
  const error = (key: string, what: string, hint = fix) =>
    new InputFileError(o.lockPath, undefined, `patches.${key}`, what, hint);
  for (const dir of [...dirs].sort()) {
    const abs = join(o.patchesDir, dir);
    if (!existsSync(abs)) continue; // the recipe check reports a missing series directory
    const prefix = `${relative(root, abs)}/`;
    for (const p of await listSeries(abs)) {
      const key = relative(root, p.path);
      const want = lock.patches[key];
      if (want === undefined) {
        if (o.overlays) continue; // overlay recipes are pinned by their own files, not the base lock
        throw error(key, `${key} is not in the lockfile`);
      }
      const got = await seriesDigest([p]);
      if (got !== want)
        throw error(
          key,
          `${key} differs from its lock entry (sha256 ${got.slice(0, 12)}…, locked ${want.slice(0, 12)}…)`,
        );
    }
    for (const key of Object.keys(lock.patches))
      if (key.startsWith(prefix) && !existsSync(join(root, key)))
        throw error(
          key,
          `${key} is locked but the file is gone`,
          'restore the patch, or run `nabla-build lock` if it was removed on purpose',
        );
  }
}
