import { lstat, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dirSize } from '@nabla-build/fsio';
import { UsageError } from '@nabla-build/model';
import type { Argv, CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import type { CommandResult } from './result.js';
import { entryCount, human, json, note, out, table } from '../output.js';
import { type CacheArgs, pruneRemote, remoteCacheCommands } from './cache-remote.js';

/** A complete step entry: `<cache>/steps/<kind>/<subject>-<32 hex>` with its entry.json. */
interface Entry {
  kind: string;
  subject: string;
  dir: string;
  key: string;
  bytes: number;
  completedAt: number;
}

const ENTRY_DIR = /^(.+)-([0-9a-f]{32})$/;
/** Cache areas that are not step entries, measured as a whole by `du`. */
const AREAS = ['git', 'downloads', 'logs', 'parsed', 'stamps', 'tmp', 'locks'];
/**
 * Areas of small files keyed by content that only grow (a parsed file per version of the config and recipes, a
 * stamp per command line and state): every prune empties them; the next command writes what it needs again.
 */
const DERIVED = ['parsed', 'stamps'];

export function cacheCommand(result: CommandResult): CommandModule<object, CacheArgs> {
  return {
    command: 'cache <command>',
    describe:
      'cache size (du), removal of old entries (prune), and the shared cache in a registry or oci:<dir> (ls, push, pull)',
    builder: (y: Argv<object>) =>
      remoteCacheCommands(y, result)
        .command({
          command: 'du',
          describe: 'size of the cache by step kind and target, and of the source caches',
          builder: (c) => c.option('json', { type: 'boolean', describe: 'print JSON' }),
          handler: async (args) => {
            result.exitCode = await du(args as CacheArgs);
          },
        })
        .command({
          command: 'prune [ref]',
          describe:
            'remove step entries: --unused (not reachable from any target), --keep-last N, --older-than D (of the local cache, which also has parsed/ and stamps/ emptied)',
          builder: (c) =>
            c
              .option('keep-last', { type: 'number', describe: 'keep the N newest entries of each step and target' })
              .option('older-than', {
                type: 'string',
                describe: 'remove entries completed before this age (30m, 12h, 7d)',
              })
              .option('unused', {
                type: 'boolean',
                describe: 'remove entries no current plan of any target reaches (another pin, recipe or compiler)',
              })
              .option('dry-run', { type: 'boolean', describe: 'list what would be removed, remove nothing' })
              .option('json', { type: 'boolean', describe: 'print JSON' }),
          handler: async (args) => {
            const ref = (args as { ref?: string }).ref;
            // With a shared cache (registry repository or oci:<dir>): its entries, judged per recorded host.
            result.exitCode = ref ? await pruneRemote({ ...(args as CacheArgs), ref }) : await prune(args as CacheArgs);
          },
        })
        .demandCommand(1, 'name a cache command: du, prune, ls, push or pull') as never,
    handler: () => undefined,
  };
}

async function cacheDirOf(args: GlobalArgs): Promise<string> {
  const { resolveSettings } = await import('../context.js');
  return (await resolveSettings(args)).cacheDir;
}

async function entries(cacheDir: string): Promise<Entry[]> {
  const found: Entry[] = [];
  const stepsDir = join(cacheDir, 'steps');
  for (const kind of (await readdir(stepsDir).catch(() => [])).sort()) {
    for (const name of (await readdir(join(stepsDir, kind)).catch(() => [])).sort()) {
      const m = ENTRY_DIR.exec(name);
      if (!m) continue;
      const dir = join(stepsDir, kind, name);
      let manifest: { completedAt?: string };
      try {
        manifest = JSON.parse(await readFile(join(dir, 'entry.json'), 'utf8'));
      } catch {
        continue; // an unfinished attempt (maybe running now): never counted, never pruned
      }
      found.push({
        kind,
        subject: m[1] as string,
        key: m[2] as string,
        dir,
        bytes: await dirSize(dir),
        completedAt: Date.parse(manifest.completedAt ?? '') || 0,
      });
    }
  }
  return found;
}

async function du(args: CacheArgs): Promise<number> {
  const cacheDir = await cacheDirOf(args);
  const list = await entries(cacheDir);
  const groups = new Map<string, { kind: string; subject: string; entries: number; bytes: number }>();
  for (const e of list) {
    const k = `${e.kind}\0${e.subject}`;
    const g = groups.get(k) ?? { kind: e.kind, subject: e.subject, entries: 0, bytes: 0 };
    g.entries++;
    g.bytes += e.bytes;
    groups.set(k, g);
  }
  const areas = await Promise.all(AREAS.map(async (a) => ({ area: a, bytes: await dirSize(join(cacheDir, a)) })));
  const total = [...groups.values()].reduce((a, g) => a + g.bytes, 0) + areas.reduce((a, x) => a + x.bytes, 0);
  if (args.json) {
    json({ cacheDir, total, steps: [...groups.values()], areas });
    return 0;
  }
  const rows = [['KIND', 'TARGET', 'ENTRIES', 'SIZE']];
  for (const g of groups.values()) rows.push([g.kind, g.subject, String(g.entries), human(g.bytes)]);
  for (const a of areas) if (a.bytes > 0) rows.push([a.area, '-', '-', human(a.bytes)]);
  rows.push(['total', '', '', human(total)]);
  out(table(rows));
  note(cacheDir);
  return 0;
}

async function prune(args: CacheArgs): Promise<number> {
  if (args.keepLast === undefined && args.olderThan === undefined && !args.unused)
    throw new UsageError('usage', 'cache prune needs --unused, --keep-last N or --older-than D', {
      hint: 'nabla-build cache prune --unused --dry-run',
    });
  if (args.keepLast !== undefined && (!Number.isInteger(args.keepLast) || args.keepLast < 0))
    throw new UsageError('usage', `--keep-last must be a whole number, got ${args.keepLast}`, {
      hint: 'nabla-build cache prune --keep-last 2',
    });
  const maxAge = args.olderThan === undefined ? undefined : parseAge(args.olderThan);
  const cacheDir = await cacheDirOf(args);
  const { isMarkedCache } = await import('@nabla-build/engine');
  const list = await entries(cacheDir);
  const marked = await isMarkedCache(cacheDir);
  if (list.length > 0 && !marked)
    throw new UsageError('cache.not-a-cache', `${cacheDir} is not a nabla-build cache: nothing was removed`, {
      hint: 'check --cache-dir / NABLA_BUILD_CACHE',
    });
  const doomed = new Map<string, { entry: Entry; why: string }>();
  if (args.unused) {
    const reachable = await reachableDirs(args);
    for (const e of list) if (!reachable.has(e.dir)) doomed.set(e.dir, { entry: e, why: 'unused' });
  }
  if (maxAge !== undefined) {
    const limit = Date.now() - maxAge;
    for (const e of list)
      if (e.completedAt < limit && !doomed.has(e.dir))
        doomed.set(e.dir, { entry: e, why: `older than ${args.olderThan}` });
  }
  if (args.keepLast !== undefined) {
    const bySubject = new Map<string, Entry[]>();
    for (const e of list)
      bySubject.set(`${e.kind}/${e.subject}`, [...(bySubject.get(`${e.kind}/${e.subject}`) ?? []), e]);
    for (const group of bySubject.values()) {
      group.sort((a, b) => b.completedAt - a.completedAt);
      for (const e of group.slice(args.keepLast))
        if (!doomed.has(e.dir)) doomed.set(e.dir, { entry: e, why: `beyond the last ${args.keepLast}` });
    }
  }
  const removed = [...doomed.values()];
  // Only from a cache nabla-build marked as its own (the entries above are checked the same way).
  const derived = marked ? await derivedFiles(cacheDir) : { files: [], bytes: 0 };
  if (!args.dryRun) {
    for (const { entry } of removed) {
      // Manifest first: a half-removed entry is then an unfinished attempt, never a corrupt cached one.
      await rm(join(entry.dir, 'entry.json'), { force: true });
      await rm(entry.dir, { recursive: true, force: true });
      await rm(join(cacheDir, 'logs', `${entry.kind}-${entry.subject}-${entry.key.slice(0, 12)}.log`), { force: true });
    }
    // (A command reading one of them now finds it gone, and parses or plans instead.)
    for (const f of derived.files) await rm(f, { force: true });
  }
  const bytes = removed.reduce((a, r) => a + r.entry.bytes, 0);
  if (args.json) {
    json({
      dryRun: args.dryRun ?? false,
      removed: removed.map(({ entry: { kind, subject, dir, bytes }, why }) => ({ kind, subject, dir, bytes, why })),
      bytes,
      kept: list.length - removed.length,
      derived: { files: derived.files.length, bytes: derived.bytes },
    });
  } else {
    for (const r of removed) out(`${r.entry.dir}  ${human(r.entry.bytes)}  (${r.why})`);
    note(
      `${args.dryRun ? 'would remove' : 'removed'} ${entryCount(removed.length)} (${human(bytes)}); ${list.length - removed.length} kept; and ${derived.files.length} parsed-file and stamp cache files (${human(derived.bytes)})`,
    );
  }
  return 0;
}

/** The files of the DERIVED areas (regular files only: nothing else of ours is there), with their bytes. */
async function derivedFiles(cacheDir: string): Promise<{ files: string[]; bytes: number }> {
  const files: string[] = [];
  let bytes = 0;
  for (const area of DERIVED) {
    for (const d of await readdir(join(cacheDir, area), { withFileTypes: true }).catch(() => [])) {
      if (!d.isFile()) continue;
      const path = join(cacheDir, area, d.name);
      files.push(path);
      bytes += (await lstat(path).catch(() => undefined))?.size ?? 0;
    }
  }
  return { files, bytes };
}

/** Entry directories the current plans of every target reach (recipes, lock, overrides and host as they are now). */
async function reachableDirs(args: CacheArgs): Promise<Set<string>> {
  const [{ loadProject }, { makePlan }, { StepStore }] = await Promise.all([
    import('../context.js'),
    import('../planning.js'),
    import('@nabla-build/engine'),
  ]);
  const project = await loadProject(args, { plans: true });
  const store = new StepStore(project.settings.cacheDir);
  const plan = await makePlan(project, [...project.recipes.targets.keys()]);
  return new Set(plan.steps.filter((s) => s.cacheable).map((s) => store.dirFor(s)));
}

/** `30s`, `45m`, `12h`, `7d`, `2w` → milliseconds. */
export function parseAge(v: string): number {
  const m = /^(\d+)(s|m|h|d|w)$/.exec(v.trim());
  if (!m)
    throw new UsageError('usage', `--older-than ${JSON.stringify(v)}: expected a number and a unit (s, m, h, d, w)`, {
      hint: 'nabla-build cache prune --older-than 7d',
    });
  const unit = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 7 * 86400e3 }[m[2] as 's'];
  return Number(m[1]) * unit;
}
