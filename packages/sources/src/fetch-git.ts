import { BuildError, type GitSourceSpec, type LockedGit, type SubmoduleSpec, UsageError } from '@nabla-build/model';
import { FULL_SHA, type SourceContext } from './context.js';
import { gitOut } from './git.js';
import { ensureMirror, type FetchOp, gitOpts } from './mirror.js';

export interface GitFetchResult {
  /** What was resolved: URLs after overrides (not after mirror rules), and every submodule (by full path). */
  locked: LockedGit;
  /** Bytes added to the cache's git objects by this call, over the superproject and all submodule mirrors. */
  bytesFetched: number;
  /** Network (or local mirror) operations done; empty when everything came from the cache. */
  ops: FetchOp[];
  /** Mirror directory per repository: `''` for the superproject, the submodule's full path otherwise. */
  mirrors: Record<string, string>;
}

export interface FetchGitOptions {
  /**
   * Take submodule revs from the superproject's gitlinks even when they differ from the recipe's (used by
   * `lock --update`, where the superproject moved on purpose).
   */
  trustGitlinks?: boolean;
}

/**
 * Ensures the pinned commit of `spec` (after `ctx.overrides[spec.name]`) and, recursively, the pinned commit of
 * every declared submodule are in their cache mirrors. Present objects mean no network at all. Submodule revs
 * come from the superproject's gitlinks at the pinned commit and must equal the recipe's, unless an override
 * replaced the submodule's rev (`ctx.overrides['<source>/<path>']`) or the superproject's rev.
 */
export async function fetchGit(
  spec: GitSourceSpec,
  ctx: SourceContext,
  opts: FetchGitOptions = {},
): Promise<GitFetchResult> {
  const ov = ctx.overrides?.[spec.name];
  const url = ov?.git ?? spec.git;
  const rev = ov?.rev ?? spec.rev;
  checkRev(spec.name, rev, ov?.rev !== undefined);
  const root = await ensureMirror(
    { label: spec.name, url, rev, full: false, ...(spec.sparse ? { sparse: spec.sparse } : {}) },
    ctx,
  );
  const result: GitFetchResult = {
    locked: { git: url, rev, submodules: {} },
    bytesFetched: root.bytesFetched,
    ops: [...root.ops],
    mirrors: { '': root.dir },
  };
  const parentMoved = opts.trustGitlinks === true || (ov?.rev !== undefined && ov.rev !== spec.rev);
  await fetchSubmodules(
    spec.name,
    { dir: root.dir, rev, label: spec.name },
    '',
    spec.submodules,
    parentMoved,
    ctx,
    result,
  );
  result.locked.submodules = sortKeys(result.locked.submodules);
  result.mirrors = sortKeys(result.mirrors);
  return result;
}

function checkRev(label: string, rev: string, fromOverride: boolean): void {
  if (!FULL_SHA.test(rev)) {
    throw new UsageError('source.rev-invalid', `source ${label}: rev \`${rev}\` is not a full 40-hex commit SHA`, {
      where: fromOverride ? `override of ${label}` : label,
      hint: `pin a full SHA (\`nabla-build lock --update ${label.split('/')[0]}\` resolves a branch or tag)`,
    });
  }
}

async function fetchSubmodules(
  source: string,
  parent: { dir: string; rev: string; label: string },
  parentPath: string,
  subs: SubmoduleSpec[],
  parentMoved: boolean,
  ctx: SourceContext,
  result: GitFetchResult,
): Promise<void> {
  const settled = await Promise.allSettled(
    subs.map(async (sub) => {
      const fullPath = parentPath ? `${parentPath}/${sub.path}` : sub.path;
      const label = `${source}/${fullPath}`;
      const ov = ctx.overrides?.[label];
      const url = ov?.git ?? sub.git;
      const gitlink = await readGitlink(parent.dir, parent.rev, sub.path, ctx);
      let rev: string;
      if (ov?.rev !== undefined) {
        rev = ov.rev;
        checkRev(label, rev, true);
      } else if (gitlink === undefined) {
        throw new BuildError(
          'source.submodule-missing',
          `source ${parent.label}@${parent.rev.slice(0, 12)} has no submodule (gitlink) at \`${sub.path}\`, but the recipe declares ${label}`,
          {
            where: label,
            hint: 'fix the submodule path in the recipe, or pin the superproject to a commit that has it',
          },
        );
      } else if (gitlink !== sub.rev && !parentMoved) {
        throw new BuildError(
          'source.submodule-mismatch',
          `submodule ${label}: the recipe pins ${sub.rev}, but ${parent.label}@${parent.rev.slice(0, 12)} records ${gitlink}`,
          {
            where: label,
            hint: `set the recipe's rev for ${fullPath} to ${gitlink} (or add an override for \`${label}\`)`,
          },
        );
      } else {
        rev = gitlink;
      }
      const r = await ensureMirror(
        { label, url, rev, full: sub.clone === 'full', ...(sub.sparse ? { sparse: sub.sparse } : {}) },
        ctx,
      );
      result.locked.submodules[fullPath] = { git: url, rev };
      result.bytesFetched += r.bytesFetched;
      result.ops.push(...r.ops);
      result.mirrors[fullPath] = r.dir;
      await fetchSubmodules(
        source,
        { dir: r.dir, rev, label },
        fullPath,
        sub.submodules,
        rev !== sub.rev || parentMoved,
        ctx,
        result,
      );
    }),
  );
  const failed = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason);
  if (failed.length === 1) throw failed[0];
  if (failed.length > 1) {
    // Every submodule was tried: say which ones are missing, all at once.
    const notOurs = failed.find((e) => !(e instanceof BuildError));
    if (notOurs) throw notOurs;
    const errs = failed as BuildError[];
    const hints = [...new Set(errs.map((e) => e.hint).filter((h): h is string => Boolean(h)))];
    const line = (e: BuildError) => (e.where && !e.message.includes(e.where) ? `${e.where}: ${e.message}` : e.message);
    throw new BuildError(
      'source.submodules-missing',
      `${errs.length} submodules of ${parent.label} could not be fetched:\n${errs.map((e) => `  - ${line(e)}`).join('\n')}`,
      { where: parent.label, ...(hints.length ? { hint: hints.join('; ') } : {}) },
    );
  }
}

/** The commit a tree records at `path` (a gitlink, mode 160000), read from the mirror without a checkout. */
export async function readGitlink(
  mirrorDir: string,
  rev: string,
  path: string,
  ctx: SourceContext,
): Promise<string | undefined> {
  const out = await gitOut(mirrorDir, ['ls-tree', '-z', rev, '--', path.replace(/\/+$/, '')], gitOpts(ctx));
  if (!out) return undefined;
  for (const entry of out.split('\0')) {
    const m = /^160000 commit ([0-9a-f]{40})\t/.exec(entry);
    if (m) return m[1];
  }
  return undefined;
}

function sortKeys<T>(o: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
