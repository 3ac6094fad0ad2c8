import { lstat, readdir, realpath, rm, rmdir } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { UsageError } from '@nabla-build/model';
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import type { CommandResult } from './result.js';
import { note } from '../output.js';

interface CleanArgs extends GlobalArgs {
  all?: boolean;
}

/** What `clean` (without --all) removes: built steps and everything derived from them. */
const BUILT = ['steps', 'logs', 'locks', 'tmp', 'stamps'];

export function cleanCommand(result: CommandResult): CommandModule<object, CleanArgs> {
  return {
    command: 'clean',
    describe: 'remove built steps and logs from the cache (--all: also git mirrors and downloads)',
    builder: (y) => y.option('all', { type: 'boolean', describe: 'remove the whole cache, sources included' }) as never,
    handler: async (args) => {
      const [{ resolveSettings }, { cacheDirSetting, homeDir }, { CACHE_MARKER, isMarkedCache }] = await Promise.all([
        import('../context.js'),
        import('../settings/paths.js'),
        import('@nabla-build/engine'),
      ]);
      const { cacheDir } = await resolveSettings(args); // validates every path setting first
      const setting = cacheDirSetting(args.cacheDir, process.env).setting;
      const removed = await cleanCache(cacheDir, {
        all: args.all ?? false,
        setting,
        protect: [process.cwd(), homeDir(process.env), '/'],
        marker: CACHE_MARKER,
        isMarked: isMarkedCache,
      });
      note(removed.length ? `removed ${removed.join(', ')}` : `nothing to remove in ${cacheDir}`);
      result.exitCode = 0;
    },
  };
}

export interface CleanOptions {
  all: boolean;
  /** Where the cache path came from (`--cache-dir`, `NABLA_BUILD_CACHE`, `default`), for messages. */
  setting: string;
  /** Never removed, nor any ancestor of them: the working directory, $HOME, `/`. */
  protect: string[];
  marker: string;
  isMarked: (dir: string) => Promise<boolean>;
}

/**
 * Removes what nabla-build built (or, with `all`, the whole cache) and nothing else: the directory must carry
 * the marker nabla-build wrote when it created it; symlinks inside are removed, never followed; the working
 * directory, $HOME, `/` and their ancestors are never removed. Everything is checked before the first removal.
 */
export async function cleanCache(cacheDir: string, o: CleanOptions): Promise<string[]> {
  let real: string;
  try {
    real = await realpath(cacheDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new UsageError('clean.unreadable', `cannot read ${cacheDir}: ${(err as Error).message}`, {
      where: o.setting,
    });
  }
  if (!(await o.isMarked(real)))
    throw new UsageError(
      'clean.not-a-cache',
      `${cacheDir} is not a nabla-build cache (it has no ${o.marker}): nothing was removed`,
      {
        where: o.setting,
        hint: 'check --cache-dir / NABLA_BUILD_CACHE; nabla-build only removes caches it created',
      },
    );
  const protectedPaths = await Promise.all(o.protect.map((p) => realpath(p).catch(() => p)));
  const guard = (path: string) => {
    const hit = protectedPaths.find((p) => p === path || p.startsWith(path.endsWith(sep) ? path : `${path}${sep}`));
    if (hit !== undefined)
      throw new UsageError(
        'clean.protected',
        `refusing to remove ${path}: it is ${hit === path ? '' : 'an ancestor of '}${describe(hit, o.protect, protectedPaths)}; nothing was removed`,
        { where: o.setting, hint: 'run clean from outside the cache, with --cache-dir naming the cache itself' },
      );
  };
  if (o.all) guard(real);
  const names = o.all ? (await readdir(real)).filter((n) => n !== o.marker) : BUILT;
  const targets: string[] = [];
  for (const n of names) {
    const p = join(real, n);
    if (!(await lstat(p).catch(() => undefined))) continue;
    guard(p);
    targets.push(p);
  }
  // fs.rm lstat()s each entry: a symlink planted in the cache is unlinked, its target left alone.
  for (const p of targets) await rm(p, { recursive: true, force: true });
  if (!o.all) return targets;
  await rm(join(real, o.marker), { force: true });
  // A cache reached through a symlink keeps its (now empty) directory: the link stays valid.
  if (!(await lstat(cacheDir)).isSymbolicLink()) await rmdir(real).catch(() => undefined);
  return [cacheDir];
}

function describe(hit: string, given: string[], real: string[]): string {
  const i = real.indexOf(hit);
  const name = i === 0 ? 'the working directory' : i === 1 ? '$HOME' : 'the root directory';
  return `${name} (${given[i] ?? hit})`;
}
