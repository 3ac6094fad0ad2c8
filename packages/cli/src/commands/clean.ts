import { lstat, readdir, realpath, rm, rmdir } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { UsageError } from '@nabla-build/model';
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { note } from '../output.js';

interface CleanArgs extends GlobalArgs {
  all?: boolean;
}

/** What `clean` (without --all) removes: built steps, everything derived from them, and parsed input files. */
const BUILT = ['steps', 'logs', 'locks', 'tmp', 'stamps', 'parsed'];
/** What `clean` never removes, nor any ancestor of them (the paths: cleanCache). */
const PROTECTED = ['the working directory', '$HOME', 'the root directory'];

export function cleanCommand(): CommandModule<object, CleanArgs> {
  return {
    command: 'clean',
    describe: 'remove built steps and logs from the cache (--all: also git mirrors and downloads)',
    builder: (y) => y.option('all', { type: 'boolean', describe: 'remove the whole cache, sources included' }) as never,
    handler: async (args) => {
      const { resolveSettings } = await import('../context.js');
      const { cacheDir, cacheSetting } = await resolveSettings(args); // validates every path setting first
      const removed = await cleanCache(cacheDir, args.all ?? false, cacheSetting);
      note(removed.length ? `removed ${removed.join(', ')}` : `nothing to remove in ${cacheDir}`);
    },
  };
}

/**
 * Removes what nabla-build built (or, with `all`, the whole cache) and nothing else: the directory must carry
 * the marker nabla-build wrote when it created it; symlinks inside are removed, never followed; the working
 * directory, $HOME, `/` and their ancestors are never removed. Everything is checked before the first removal.
 * `setting`: where the cache path came from (`--cache-dir`, `NABLA_BUILD_CACHE`, `default`), for messages.
 */
async function cleanCache(cacheDir: string, all: boolean, setting: string): Promise<string[]> {
  const [{ homeDir }, { CACHE_MARKER: marker, isMarkedCache }] = await Promise.all([
    import('../settings/paths.js'),
    import('@nabla-build/engine'),
  ]);
  let real: string;
  try {
    real = await realpath(cacheDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError('clean.unreadable', `cannot read ${cacheDir}: ${(err as Error).message}`, {
      where: setting,
    });
  }
  if (!(await isMarkedCache(real)))
    throw new UsageError(
      'clean.not-a-cache',
      `${cacheDir} is not a nabla-build cache (it has no ${marker}): nothing was removed`,
      {
        where: setting,
        hint: 'check --cache-dir / NABLA_BUILD_CACHE; nabla-build only removes caches it created',
      },
    );
  const protect = [process.cwd(), homeDir(process.env), '/'];
  const protectedPaths = await Promise.all(protect.map((p) => realpath(p).catch(() => p)));
  const guard = (path: string) => {
    const i = protectedPaths.findIndex((p) => p === path || p.startsWith(path.endsWith(sep) ? path : `${path}${sep}`));
    if (i >= 0)
      throw new UsageError(
        'clean.protected',
        `refusing to remove ${path}: it is ${protectedPaths[i] === path ? '' : 'an ancestor of '}${PROTECTED[i]} (${protect[i]}); nothing was removed`,
        { where: setting, hint: 'run clean from outside the cache, with --cache-dir naming the cache itself' },
      );
  };
  if (all) guard(real);
  const names = all ? (await readdir(real)).filter((n) => n !== marker) : BUILT;
  const targets: string[] = [];
  for (const n of names) {
    const p = join(real, n);
    if (!(await lstat(p).catch(() => undefined))) continue;
    guard(p);
    targets.push(p);
  }
  // fs.rm lstat()s each entry: a symlink planted in the cache is unlinked, its target left alone.
  for (const p of targets) await rm(p, { recursive: true, force: true });
  if (!all) return targets;
  await rm(join(real, marker), { force: true });
  // A cache reached through a symlink keeps its (now empty) directory: the link stays valid.
  if (!(await lstat(cacheDir)).isSymbolicLink()) await rmdir(real).catch(() => undefined);
  return [cacheDir];
}
