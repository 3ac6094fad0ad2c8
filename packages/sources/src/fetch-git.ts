import {
  BuildError,
  type GitSourceSpec,
  type LockedGit,
  type PinProvenance,
  type SubmoduleSpec,
  UsageError,
} from '@nabla-build/model';
import { FULL_SHA, type SourceContext } from './context.js';
import { gitOut } from './git.js';
import { ensureMirror, type FetchOp, gitOpts } from './git-mirror.js';
import { sorted } from './lockfile.js';

export interface GitFetchResult {
  /** What was resolved: the spec's URLs (not after mirror rules), and every submodule (by full path). */
  locked: LockedGit;
  /** Bytes added to the cache's git objects by this call, over the superproject and all submodule mirrors. */
  bytesFetched: number;
  /** Network (or local mirror) operations done; empty when everything came from the cache. */
  ops: FetchOp[];
  /** Mirror directory per repository: `''` for the superproject, the submodule's full path otherwise. */
  mirrors: Record<string, string>;
}

/**
 * Ensures the pinned commit of `spec` (as the planner resolved it) and, recursively, the pinned commit of every
 * declared submodule are in their cache mirrors. Present objects mean no network at all. Submodule revs come
 * from the superproject's gitlinks at the pinned commit and must equal the spec's, unless the submodule's pin
 * was chosen by an override (`pins.overridden`), or a repository above it was moved off the recipe's rev
 * (`pins.moved`; `lock --update` moves the superproject): then the gitlinks are followed.
 */
export async function fetchGit(
  spec: GitSourceSpec,
  ctx: SourceContext,
  pins: PinProvenance = { overridden: [], moved: [] },
): Promise<GitFetchResult> {
  const { git: url, rev } = spec;
  checkRev(spec.name, rev, pins.overridden.includes(spec.name));
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
  const parent = { dir: root.dir, rev, label: spec.name, moved: pins.moved.includes(spec.name) };
  await fetchSubmodules(spec.name, parent, '', spec.submodules, pins, ctx, result);
  result.locked.submodules = Object.fromEntries(sorted(result.locked.submodules));
  result.mirrors = Object.fromEntries(sorted(result.mirrors));
  return result;
}

function checkRev(label: string, rev: string, byOverride: boolean): void {
  if (!FULL_SHA.test(rev)) {
    throw new UsageError('source.rev-invalid', `source ${label}: rev \`${rev}\` is not a full 40-hex commit SHA`, {
      where: byOverride ? `override of ${label}` : label,
      hint: `pin a full SHA (\`nabla-build lock --update ${label.split('/')[0]}\` resolves a branch or tag)`,
    });
  }
}

async function fetchSubmodules(
  source: string,
  parent: { dir: string; rev: string; label: string; moved: boolean },
  parentPath: string,
  subs: SubmoduleSpec[],
  pins: PinProvenance,
  ctx: SourceContext,
  result: GitFetchResult,
): Promise<void> {
  const labelOf = (sub: SubmoduleSpec) => `${source}/${parentPath ? `${parentPath}/${sub.path}` : sub.path}`;
  // One read for the gitlinks of every submodule whose pin is not an override's.
  const links = await readGitlinks(
    parent.dir,
    parent.rev,
    subs.filter((sub) => !pins.overridden.includes(labelOf(sub))).map((sub) => sub.path),
    ctx,
  );
  const settled = await Promise.allSettled(
    subs.map(async (sub) => {
      const fullPath = parentPath ? `${parentPath}/${sub.path}` : sub.path;
      const label = labelOf(sub);
      const url = sub.git;
      const byOverride = pins.overridden.includes(label);
      const gitlink = byOverride ? undefined : links.get(sub.path.replace(/\/+$/, ''));
      let rev: string;
      if (byOverride) {
        rev = sub.rev;
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
      } else if (gitlink !== sub.rev && !parent.moved) {
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
      const moved = parent.moved || pins.moved.includes(label);
      await fetchSubmodules(source, { dir: r.dir, rev, label, moved }, fullPath, sub.submodules, pins, ctx, result);
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

/** Gitlinks read before, by mirror, commit and paths: a commit's tree never changes. */
const gitlinkMemo = new Map<string, Promise<Map<string, string>>>();

/**
 * The commits a tree records at `paths` (gitlinks, mode 160000), read from the mirror with one `git ls-tree`
 * and without a checkout; a path that holds no gitlink is absent from the answer.
 */
function readGitlinks(mirrorDir: string, rev: string, paths: string[], ctx: SourceContext) {
  const ps = paths.map((p) => p.replace(/\/+$/, ''));
  const key = [mirrorDir, rev, ...ps].join('\0');
  let links = gitlinkMemo.get(key);
  if (!links) {
    links =
      ps.length === 0
        ? Promise.resolve(new Map<string, string>())
        : gitOut(mirrorDir, ['ls-tree', '-z', rev, '--', ...ps], gitOpts(ctx)).then((text) => {
            const found = new Map<string, string>();
            for (const entry of (text ?? '').split('\0')) {
              const m = /^160000 commit ([0-9a-f]{40})\t(.*)$/s.exec(entry);
              if (m?.[1] && m[2] !== undefined) found.set(m[2], m[1]);
            }
            return found;
          });
    gitlinkMemo.set(key, links);
    // A failed read (a cancelled git) is not remembered.
    links.catch(() => gitlinkMemo.delete(key));
  }
  return links;
}
