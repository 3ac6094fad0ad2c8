import { appendFile, copyFile, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { inflateSync } from 'node:zlib';
import { BuildError, type GitSourceSpec, type LockedGit, type SubmoduleSpec } from '@nabla-build/model';
import { gitMirrorDir } from './cache.js';
import { fetchHint, type SourceContext } from './context.js';
import { pathExists as exists, removeStaleTemps, tempSibling } from '@nabla-build/fsio';
import { git, gitOut } from './git.js';
import { checkedBefore, configQuote, configText, gitOpts, isPartial, missingBlobs, writeRepo } from './git-mirror.js';

/** One git working tree inside a checkout. */
export interface CheckoutTree {
  /** Relative to the checkout root; `''` for the superproject. */
  path: string;
  git: string;
  rev: string;
  /** `root`: the superproject; `submodule`: `.git` is a gitlink file; `full`: `.git` is a directory. */
  kind: 'root' | 'submodule' | 'full';
  /** Committer time of `rev` (seconds since the epoch). */
  committed: number;
  sparse?: string[];
}

export interface CheckoutResult {
  dest: string;
  /** Every git tree, superproject first, then submodules top-down (patch series target these). */
  trees: CheckoutTree[];
}

/**
 * Materialises `locked` (as returned by fetchGit or read from the lockfile) at `dest`, from the cache mirrors
 * only: no network. The tree is built in `<dest>.tmp-<pid>` and renamed into place, so `dest` either does not
 * exist or is complete. Objects are borrowed from the mirrors through `objects/info/alternates` (like
 * `git clone --shared`): the checkout stays valid as long as the cache does.
 *
 * Submodules: `clone: submodule` gets the usual layout (`<path>/.git` is a file pointing into the parent's
 * `.git/modules/<name>`); `clone: full` gets its own `.git` directory with the mirror's tags (Solo5's
 * gen_version_h.sh tests `-d .git` and runs `git describe`). `sparse` uses cone-mode sparse checkout.
 * `.gitmodules` is left untouched; each submodule's URL in `.git/config` points at its local mirror.
 */
export async function checkoutGit(
  spec: GitSourceSpec,
  locked: LockedGit,
  dest: string,
  ctx: SourceContext,
): Promise<CheckoutResult> {
  if (await exists(dest)) {
    throw new BuildError(
      'source.checkout-exists',
      `cannot check out ${spec.name} at ${dest}: the path already exists`,
      {
        where: dest,
        hint: `remove ${dest} first`,
      },
    );
  }
  await mkdir(dirname(dest), { recursive: true });
  await removeStaleTemps(dest);
  const tmp = tempSibling(dest);
  const root = { worktree: tmp, gitDir: join(tmp, '.git') };
  const trees: CheckoutTree[] = [];
  try {
    await mkdir(tmp);
    await readCommitTimes(ctx, [
      { ...locked, ...(spec.sparse ? { sparse: spec.sparse } : {}) },
      ...pins(spec.submodules, locked, ''),
    ]);
    const committed = await populate(ctx, spec.name, root, locked.git, locked.rev, spec.sparse, false);
    trees.push({
      path: '',
      git: locked.git,
      rev: locked.rev,
      kind: 'root',
      committed,
      ...(spec.sparse ? { sparse: spec.sparse } : {}),
    });
    await checkoutSubmodules(ctx, spec.name, locked, root, '', spec.submodules, trees);
    // No `git status` here: the files and the index were both just written from the same objects, so a
    // damaged cache fails the checkout itself.
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return { dest, trees };
}

interface RepoLoc {
  worktree: string;
  gitDir: string;
}

async function checkoutSubmodules(
  ctx: SourceContext,
  source: string,
  locked: LockedGit,
  parent: RepoLoc,
  parentPath: string,
  subs: SubmoduleSpec[],
  trees: CheckoutTree[],
): Promise<void> {
  const names = await submoduleNames(parent.worktree, ctx);
  for (const sub of subs) {
    const fullPath = parentPath ? `${parentPath}/${sub.path}` : sub.path;
    const pin = locked.submodules[fullPath];
    if (!pin) {
      throw new BuildError('source.lock-mismatch', `the lock of ${source} has no entry for submodule ${fullPath}`, {
        where: `${source}/${fullPath}`,
        hint: `run \`${fetchHint(ctx)}\` (or \`nabla-build lock\`) again`,
      });
    }
    const name = names.get(sub.path.replace(/\/+$/, '')) ?? sub.path;
    const worktree = join(parent.worktree, sub.path);
    await mkdir(worktree, { recursive: true });
    const loc: RepoLoc = {
      worktree,
      gitDir: sub.clone === 'full' ? join(worktree, '.git') : join(parent.gitDir, 'modules', name),
    };
    const label = `${source}/${fullPath}`;
    const committed = await populate(ctx, label, loc, pin.git, pin.rev, sub.sparse, sub.clone === 'full');
    const entry = { url: gitMirrorDir(ctx.cacheDir, pin.git), active: true };
    await appendFile(join(parent.gitDir, 'config'), configText({ [`submodule ${configQuote(name)}`]: entry }));
    trees.push({
      path: fullPath,
      git: pin.git,
      rev: pin.rev,
      kind: sub.clone === 'full' ? 'full' : 'submodule',
      committed,
      ...(sub.sparse ? { sparse: sub.sparse } : {}),
    });
    await checkoutSubmodules(ctx, source, locked, loc, fullPath, sub.submodules, trees);
  }
}

/** path → name, from the checked-out `.gitmodules` of a tree (empty if it has none). */
async function submoduleNames(worktree: string, ctx: SourceContext): Promise<Map<string, string>> {
  const map = new Map<string, string>();
  const text = await readFile(join(worktree, '.gitmodules'), 'utf8').catch(() => undefined);
  if (text === undefined) return map;
  // The same file (a superproject checked out twice) is read by git once per process.
  const known = namesByGitmodules.get(text);
  if (known) return known;
  const out = await gitOut(
    worktree,
    ['config', '-f', '.gitmodules', '--get-regexp', '^submodule\\..*\\.path$'],
    gitOpts(ctx),
  );
  for (const line of (out ?? '').split('\n')) {
    const m = /^submodule\.(.+)\.path (.+)$/.exec(line.trim());
    if (m?.[1] && m[2]) map.set(m[2].replace(/\/+$/, ''), m[1]);
  }
  if (out !== undefined) namesByGitmodules.set(text, map);
  return map;
}

/** submoduleNames' answers, by the text of the `.gitmodules` file. */
const namesByGitmodules = new Map<string, Map<string, string>>();

/**
 * Writes a new repository at `loc` (what `git init` writes, without hooks or templates: no git started) that
 * borrows the mirror's objects, and checks out `rev` (detached). A `.git` elsewhere than in the worktree is
 * linked both ways with relative paths, as `git submodule absorbgitdirs` writes them, so the tree can be
 * renamed. Returns the commit's committer time.
 */
async function populate(
  ctx: SourceContext,
  label: string,
  loc: RepoLoc,
  url: string,
  rev: string,
  sparse: string[] | undefined,
  withTags: boolean,
): Promise<number> {
  const o = gitOpts(ctx);
  const mirror = gitMirrorDir(ctx.cacheDir, url);
  const notFetched = (why: string) =>
    new BuildError('source.not-fetched', `${label}@${rev.slice(0, 12)} is not in the cache (${why})`, {
      where: mirror,
      hint: `run \`${fetchHint(ctx)}\` first`,
    });
  if (!(await exists(mirror))) throw notFetched('no mirror');
  // A mirror this process fetched or checked for this commit (and these paths) since: nothing to ask git but
  // the commit's time, once.
  const known = await checkedBefore(mirror, { rev, ...(sparse ? { sparse } : {}) });
  let committed = known ? commitTimes.get(`${mirror}\0${rev}`) : undefined;
  if (committed === undefined) {
    const out = await gitOut(mirror, ['show', '-s', '--format=%ct', `${rev}^{commit}`], o);
    if (out === undefined) throw notFetched('commit missing');
    committed = Number(out.trim());
    commitTimes.set(`${mirror}\0${rev}`, committed);
  }
  if (!known && (await isPartial(mirror))) {
    const missing = await missingBlobs(mirror, { rev, ...(sparse ? { sparse } : {}) }, ctx);
    if (missing.length > 0) throw notFetched(`${missing.length} blobs of the checked-out paths missing`);
  }
  const separate = loc.gitDir !== join(loc.worktree, '.git');
  // Cone-mode sparse checkout, written as `git sparse-checkout set --cone` writes it (a directory name with a
  // pattern character is left to that git, which refuses it with its own message).
  const cone = sparse?.length && !sparse.some((d) => /[*?[\]\\]/.test(d)) ? conePatterns(sparse) : undefined;
  await writeRepo(loc.gitDir, {
    core: {
      repositoryformatversion: 0,
      filemode: true,
      bare: false,
      logallrefupdates: true,
      ...(separate ? { worktree: relative(loc.gitDir, loc.worktree) } : {}),
      ...(cone ? { sparseCheckout: true, sparseCheckoutCone: true } : {}),
    },
    'remote "origin"': { url: mirror, fetch: '+refs/heads/*:refs/remotes/origin/*' },
  });
  if (separate) await writeFile(join(loc.worktree, '.git'), `gitdir: ${relative(loc.worktree, loc.gitDir)}\n`);
  await writeFile(join(loc.gitDir, 'objects', 'info', 'alternates'), `${join(mirror, 'objects')}\n`);
  if (await exists(join(mirror, 'shallow'))) await copyFile(join(mirror, 'shallow'), join(loc.gitDir, 'shallow'));
  if (withTags) {
    // The mirror's tags, as a packed-refs file (`<oid> <ref>` lines; git sorts an unmarked file when it reads it).
    const tags = await mirrorTags(mirror);
    if (tags.size > 0)
      await writeFile(join(loc.gitDir, 'packed-refs'), [...tags].map(([ref, oid]) => `${oid} ${ref}\n`).join(''));
  }
  if (cone) {
    await mkdir(join(loc.gitDir, 'info'));
    await writeFile(join(loc.gitDir, 'info', 'sparse-checkout'), cone);
  } else if (sparse?.length) await git(loc.worktree, ['sparse-checkout', 'set', '--cone', ...sparse], o);
  await git(loc.worktree, ['checkout', '-q', '--detach', rev], o);
  return committed;
}

/**
 * The cone-mode patterns of `dirs`, as git 2.39 writes them: everything at the top level, then each parent
 * directory's own files, then each directory wanted in full (one inside another wanted dir is left out).
 */
export function conePatterns(dirs: string[]): string {
  const all = [...new Set(dirs.map((d) => d.replace(/^\/+|\/+$/g, '')).filter(Boolean))];
  const wanted = all.filter((d) => !all.some((o) => d.startsWith(`${o}/`)));
  const parents = new Set(
    wanted.flatMap((d) =>
      d
        .split('/')
        .slice(0, -1)
        .map((_, i, p) => p.slice(0, i + 1).join('/')),
    ),
  );
  const lines = [...[...parents].sort().flatMap((p) => [`/${p}/`, `!/${p}/*/`]), ...wanted.sort().map((d) => `/${d}/`)];
  return ['/*', '!/*/', ...lines, ''].join('\n');
}

/**
 * The tags of a mirror (ref → object id), read from its files as git keeps them (we write mirrors with the files
 * backend): packed-refs, overridden by loose refs under refs/tags. No git started.
 */
async function mirrorTags(mirror: string): Promise<Map<string, string>> {
  const tags = new Map<string, string>();
  const packed = await readFile(join(mirror, 'packed-refs'), 'utf8').catch(() => '');
  for (const m of packed.matchAll(/^([0-9a-f]{40,64}) (refs\/tags\/.+)$/gm)) tags.set(m[2] as string, m[1] as string);
  const loose = await readdir(join(mirror, 'refs', 'tags'), { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of loose) {
    if (!e.isFile() || e.name.endsWith('.lock')) continue; // (a symbolic ref, never written by fetch, is left out)
    const file = join(e.parentPath, e.name);
    const oid = /^([0-9a-f]{40,64})\n?$/.exec(await readFile(file, 'utf8'))?.[1];
    if (oid) tags.set(relative(mirror, file).split(sep).join('/'), oid);
  }
  return tags;
}

/** Committer times read before, by `<mirror>\0<rev>` (a commit never changes). */
const commitTimes = new Map<string, number>();

interface Pin {
  git: string;
  rev: string;
  sparse?: string[];
}

/** The locked pins of the declared submodules, top-down (those without a pin are reported by checkoutSubmodules). */
function pins(subs: SubmoduleSpec[], locked: LockedGit, parentPath: string): Pin[] {
  return subs.flatMap((sub) => {
    const full = parentPath ? `${parentPath}/${sub.path}` : sub.path;
    const pin = locked.submodules[full];
    const own = pin ? [{ git: pin.git, rev: pin.rev, ...(sub.sparse ? { sparse: sub.sparse } : {}) }] : [];
    return [...own, ...pins(sub.submodules, locked, full)];
  });
}

/**
 * Reads the committer times of the trees of a checkout whose mirrors this process fetched or checked for their
 * commits (checkedBefore: so each commit is in its own mirror) with one git, which sees all those mirrors'
 * objects (the first mirror's repository, the others as alternates), into commitTimes; a loose commit is read
 * directly. Times read before are not asked again; trees left out (or a failed read) fall back to populate's
 * own query of their mirror.
 */
async function readCommitTimes(ctx: SourceContext, wanted: Pin[]): Promise<void> {
  const todo: { mirror: string; rev: string }[] = [];
  for (const w of wanted) {
    const mirror = gitMirrorDir(ctx.cacheDir, w.git);
    if (commitTimes.has(`${mirror}\0${w.rev}`) || !(await checkedBefore(mirror, w))) continue;
    const loose = await looseCommitTime(mirror, w.rev);
    if (loose === undefined) todo.push({ mirror, rev: w.rev });
    else commitTimes.set(`${mirror}\0${w.rev}`, loose);
  }
  const mirrors = [...new Set(todo.map((w) => w.mirror))];
  if (!mirrors[0]) return;
  const revs = [...new Set(todo.map((w) => `${w.rev}^{commit}`))];
  const out = await gitOut(mirrors[0], ['log', '--no-walk=unsorted', '--format=%H %ct', ...revs], {
    ...gitOpts(ctx),
    alternates: mirrors.slice(1).map((m) => join(m, 'objects')),
  });
  const times = new Map((out ?? '').split('\n').map((l) => l.split(' ') as [string, string]));
  for (const w of todo) {
    const t = times.get(w.rev);
    if (t !== undefined) commitTimes.set(`${w.mirror}\0${w.rev}`, Number(t));
  }
}

/**
 * The committer time of a commit a mirror holds as a loose object (what a small fetch leaves: `objects/xx/…`,
 * zlib of `commit <size>\0` and the commit's text), read without a git; undefined when it is packed.
 */
async function looseCommitTime(mirror: string, rev: string): Promise<number | undefined> {
  try {
    const text = inflateSync(await readFile(join(mirror, 'objects', rev.slice(0, 2), rev.slice(2)))).toString('latin1');
    const headers = text.slice(0, text.indexOf('\n\n'));
    const m = /\ncommitter [^\n]*> (\d+) [+-]\d{4}(\n|$)/.exec(headers);
    return text.startsWith('commit ') && m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Newest committer time (seconds since the epoch) over every tree of a checkout: the default creation time of
 * images built from it, so their digests never depend on "now".
 */
export async function newestCommitTime(checkout: CheckoutResult): Promise<number> {
  return Math.max(0, ...checkout.trees.map((t) => t.committed));
}
