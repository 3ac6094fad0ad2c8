import {
  BuildError,
  type GitSourceSpec,
  type LockedGit,
  type LockedTarball,
  type PlannedSource,
  type SubmoduleSpec,
  UsageError,
} from '@nabla-build/model';
import { FULL_SHA, offlineError, SHA256_HEX, type SourceContext } from './context.js';
import { fetchGit } from './fetch-git.js';
import { git, gitTail } from './git.js';
import { gitOpts } from './git-mirror.js';
import { resolveMirror } from './mirror-rules.js';

export interface LockSourcesOptions {
  /** Git sources whose pin is re-resolved from their `branch` (or HEAD) with `git ls-remote`. */
  update?: string[];
}

export interface LockSourcesResult {
  git: Record<string, LockedGit>;
  tarballs: Record<string, LockedTarball>;
  /** Pins that `update` moved (superprojects only; their submodules follow the new gitlinks). */
  updated: { name: string; from: string; to: string; ref: string }[];
  bytesFetched: number;
}

/**
 * Resolves every source (as the planner resolved it, `resolveSource`) to exact pins for the lockfile. Without
 * `update`, every pin must be a full SHA that exists upstream (fetched into the cache if needed;
 * `source.pin-missing` otherwise) and every submodule pin must match the superproject's gitlink. Sources named in
 * `update` are re-resolved from their branch/tag, unless an override chose their pin. Tarballs are recorded as
 * resolved (first URL, sha256); `fetch` verifies them.
 */
export async function lockSources(
  sources: PlannedSource[],
  ctx: SourceContext,
  opts: LockSourcesOptions = {},
): Promise<LockSourcesResult> {
  const unique = new Map<string, PlannedSource>();
  for (const p of sources) {
    const prev = unique.get(p.spec.name);
    if (prev && JSON.stringify(prev.spec) !== JSON.stringify(p.spec)) {
      throw new UsageError('source.conflict', `source ${p.spec.name} is declared twice with different contents`, {
        where: p.spec.name,
        hint: 'give one of them another name, or make both declarations identical',
      });
    }
    unique.set(p.spec.name, p);
  }
  const update = new Set(opts.update ?? []);
  for (const u of update) {
    const s = unique.get(u)?.spec;
    if (!s)
      throw new UsageError('lock.unknown-source', `lock --update: no source named ${u}`, {
        hint: `known sources: ${[...unique.keys()].sort().join(', ')}`,
      });
    if (s.kind !== 'git')
      throw new UsageError(
        'lock.not-git',
        `lock --update ${u}: only git sources have a branch to follow; ${u} is a tarball`,
      );
  }
  const result: LockSourcesResult = { git: {}, tarballs: {}, updated: [], bytesFetched: 0 };
  const names = [...unique.keys()].sort();
  for (const name of names) {
    const planned = unique.get(name) as PlannedSource;
    const s = planned.spec;
    if (s.kind === 'tarball') {
      const url = s.urls[0];
      const sha256 = s.sha256.toLowerCase();
      if (!url) throw new UsageError('source.no-url', `source ${name} has no URL`, { where: name });
      if (!SHA256_HEX.test(sha256))
        throw new UsageError('source.sha256-invalid', `source ${name}: sha256 \`${sha256}\` is not 64 hex digits`, {
          where: name,
        });
      result.tarballs[name] = { url, sha256 };
      continue;
    }
    if (update.has(name)) {
      const ref = s.branch ?? 'HEAD';
      // A pin an override chose stays; the others follow their branch, and the submodules the new gitlinks.
      const rev = planned.overridden.includes(name) ? s.rev : await resolveRef(name, s.git, ref, ctx);
      if (rev !== s.rev) result.updated.push({ name, from: s.rev, to: rev, ref });
      const r = await fetchGit({ ...s, rev }, ctx, { ...planned, moved: [...planned.moved, name] });
      result.git[name] = r.locked;
      result.bytesFetched += r.bytesFetched;
      continue;
    }
    const bad = firstBadPin(s);
    if (bad) {
      throw new UsageError(
        'source.rev-invalid',
        `source ${bad.label}: rev \`${bad.rev}\` is not a full 40-hex commit SHA`,
        {
          where: bad.label,
          hint: `pin a full SHA, or run \`nabla-build lock --update ${name}\` to resolve \`${s.branch ?? bad.rev}\``,
        },
      );
    }
    const r = await fetchGit(s, ctx, planned);
    result.git[name] = r.locked;
    result.bytesFetched += r.bytesFetched;
  }
  return result;
}

function firstBadPin(s: GitSourceSpec): { label: string; rev: string } | undefined {
  if (!FULL_SHA.test(s.rev)) return { label: s.name, rev: s.rev };
  const walk = (subs: SubmoduleSpec[], prefix: string): { label: string; rev: string } | undefined => {
    for (const sub of subs) {
      const p = prefix ? `${prefix}/${sub.path}` : sub.path;
      if (!FULL_SHA.test(sub.rev)) return { label: `${s.name}/${p}`, rev: sub.rev };
      const deeper = walk(sub.submodules, p);
      if (deeper) return deeper;
    }
    return undefined;
  };
  return walk(s.submodules, '');
}

/**
 * The full SHA a branch or tag of `url` points at (`git ls-remote`; annotated tags are peeled). Goes through the
 * mirror rules; under `--offline` fails at once.
 */
export async function resolveRef(name: string, url: string, ref: string, ctx: SourceContext): Promise<string> {
  if (FULL_SHA.test(ref)) return ref;
  const fetchUrl = resolveMirror(url, ctx.mirrors ?? [], { allowLocal: ctx.allowLocal ?? false }).url;
  if (ctx.offline) throw offlineError(ctx, name, fetchUrl, `needs the network to resolve \`${ref}\``);
  const patterns = ref === 'HEAD' ? ['HEAD'] : [`refs/heads/${ref}`, `refs/tags/${ref}`, `refs/tags/${ref}^{}`];
  let out: string;
  try {
    out = (await git(process.cwd(), ['ls-remote', fetchUrl, ...patterns], gitOpts(ctx))).stdout;
  } catch (e) {
    throw new BuildError(
      'source.ls-remote-failed',
      `source ${name}: \`git ls-remote ${fetchUrl}\` failed: ${gitTail(e)}`,
      {
        where: fetchUrl,
        hint: 'check the URL and the network, or add a mirror rule',
      },
    );
  }
  const refs = new Map<string, string>();
  for (const line of out.split('\n')) {
    const [sha, r] = line.trim().split(/\s+/);
    if (sha && r && FULL_SHA.test(sha)) refs.set(r, sha);
  }
  const found =
    ref === 'HEAD'
      ? refs.get('HEAD')
      : (refs.get(`refs/heads/${ref}`) ?? refs.get(`refs/tags/${ref}^{}`) ?? refs.get(`refs/tags/${ref}`));
  if (!found) {
    throw new BuildError('source.ref-missing', `source ${name}: ${fetchUrl} has no branch or tag \`${ref}\``, {
      where: fetchUrl,
      hint: "fix the recipe's branch, or point the source at the repository that has it",
    });
  }
  return found;
}
