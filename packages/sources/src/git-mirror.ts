import { type Dirent, readdirSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { dirSize, pathExists as exists, removeStaleTemps, tempSibling, withLock } from '@nabla-build/fsio';
import { BuildError, CancelledError } from '@nabla-build/model';
import { gitMirrorDir } from './cache.js';
import { offlineError, type SourceContext } from './context.js';
import { git, gitOk, gitOut, gitTail } from './git.js';
import { resolveMirror } from './mirror-rules.js';

/** What one repository of a git source needs in its mirror. */
export interface MirrorNeed {
  /** `frankenlibc` or `frankenlibc/solo5`, for messages. */
  label: string;
  /** Canonical (recipe or override) URL: the cache key. */
  url: string;
  rev: string;
  /**
   * Paths that will be checked out (cone mode) when the mirror is a partial clone; `undefined` = everything.
   * A non-empty list makes a new mirror a partial clone (`--filter=blob:none`).
   */
  sparse?: string[];
  /** A `clone: full` submodule: complete history and tags (so `git describe` works in the clone). */
  full: boolean;
}

/** One network operation, for progress reports and the benchmark. */
export interface FetchOp {
  label: string;
  url: string;
  kind: 'shallow' | 'full' | 'unshallow' | 'blobs' | 'recreate';
}

const PIN_REF = (rev: string) => `refs/nabla/pins/${rev}`;

/** Makes sure the mirror of `need.url` holds `need.rev` (and what checkout will read), fetching only what is missing. */
export async function ensureMirror(need: MirrorNeed, ctx: SourceContext) {
  const dir = gitMirrorDir(ctx.cacheDir, need.url);
  const none = { dir, bytesFetched: 0, ops: [] as FetchOp[] };
  if (await checkedBefore(dir, need)) return none;
  await mkdir(dirname(dir), { recursive: true });
  // The mirror's mutex: another process may be filling the same mirror.
  const mutex = `${dir}.lock`;
  const signal = ctx.signal ? { signal: ctx.signal } : {};
  return withLock(
    mutex,
    async () => {
      // Another need of the same mirror (a second source sharing a submodule) may have filled it meanwhile.
      if (await checkedBefore(dir, need)) return none;
      await removeStaleTemps(dir);
      await cleanInterrupted(dir);
      const state = await inspectMirror(dir, need, ctx);
      if (state.kind === 'complete') {
        await remember(dir, need);
        return none;
      }
      const fetchUrl = resolveMirror(need.url, ctx.mirrors ?? [], { allowLocal: ctx.allowLocal ?? false }).url;
      if (ctx.offline) {
        throw offlineError(
          ctx,
          need.label,
          fetchUrl,
          state.kind === 'corrupt'
            ? `has a damaged cache entry (${state.reason})`
            : `@${need.rev.slice(0, 12)} is not in the cache`,
        );
      }
      const ops: FetchOp[] = [];
      const recreate = async (reason: string) => {
        ctx.onProgress?.(`${need.label}: cached mirror is damaged (${reason}); re-creating ${dir}`);
        ops.push({ label: need.label, url: fetchUrl, kind: 'recreate' });
        const trash = tempSibling(dir);
        await rename(dir, trash);
        await rm(trash, { recursive: true, force: true });
      };
      if (state.kind === 'incomplete') {
        const before = await dirSize(join(dir, 'objects'));
        try {
          await fillMirror(dir, fetchUrl, need, ctx, ops, { hasCommit: state.hasCommit, fresh: false });
          await remember(dir, need);
          const after = await dirSize(join(dir, 'objects'));
          return { dir, bytesFetched: Math.max(0, after - before), ops };
        } catch (e) {
          // A fetch into a damaged repository fails in odd ways ("bad object", "pin missing"): if the whole mirror
          // no longer passes fsck, start again from an empty one; otherwise the error stands.
          if (!(e instanceof BuildError) || (await gitOk(dir, fsckArgs(), gitOpts(ctx)))) throw e;
          await recreate('git fsck failed after a failed fetch');
        }
      } else if (state.kind === 'corrupt') {
        await recreate(state.reason);
      }
      const tmp = tempSibling(dir);
      try {
        await initMirror(tmp, need);
        await fillMirror(tmp, fetchUrl, need, ctx, ops, { hasCommit: false, fresh: true });
        await rename(tmp, dir);
        await remember(dir, need);
      } catch (e) {
        await rm(tmp, { recursive: true, force: true });
        throw e;
      }
      return { dir, bytesFetched: await dirSize(join(dir, 'objects')), ops };
    },
    { ...signal, abortError: () => new CancelledError(`cancelled while waiting for ${mutex}`) },
  );
}

/**
 * A git killed mid-fetch leaves lock files (which make the next ref update fail) and temp packs. Every writer of
 * a mirror holds our lock, so under it any such file is stale.
 */
async function cleanInterrupted(dir: string): Promise<void> {
  if (!(await exists(dir))) return;
  for (const e of await readdir(join(dir, 'refs'), { recursive: true, withFileTypes: true }).catch(() => []))
    if (!e.isDirectory() && e.name.endsWith('.lock')) await rm(join(e.parentPath, e.name), { force: true });
  for (const f of ['packed-refs.lock', 'shallow.lock', 'config.lock', 'HEAD.lock', 'FETCH_HEAD.lock', 'index.lock']) {
    await rm(join(dir, f), { force: true });
  }
  try {
    for (const f of await readdir(join(dir, 'objects', 'pack'))) {
      if (f.startsWith('tmp_') || f.startsWith('.tmp-')) await rm(join(dir, 'objects', 'pack', f), { force: true });
    }
    for (const f of await readdir(join(dir, 'objects'))) {
      if (f.startsWith('incoming-') || f.startsWith('tmp_objdir'))
        await rm(join(dir, 'objects', f), { recursive: true, force: true });
    }
  } catch {
    // No objects dir: inspectMirror calls it damaged.
  }
}

type MirrorState =
  | { kind: 'missing' }
  | { kind: 'corrupt'; reason: string }
  | { kind: 'incomplete'; hasCommit: boolean }
  | { kind: 'complete' };

/** Connectivity check of one commit; the commit-graph and multi-pack-index checks (a git each) are left out. */
const FSCK = ['-c', 'core.commitGraph=false', '-c', 'core.multiPackIndex=false', 'fsck', '--connectivity-only'];
const fsckArgs = (rev?: string) => [...FSCK, '--no-dangling', '--no-progress', ...(rev ? [rev] : [])];

async function inspectMirror(dir: string, need: MirrorNeed, ctx: SourceContext): Promise<MirrorState> {
  if (!(await exists(dir))) return { kind: 'missing' };
  const o = gitOpts(ctx);
  // What makes git take a directory for a repository (never one of its parents): HEAD, objects/ and refs/.
  for (const f of ['HEAD', 'objects', 'refs', 'config'])
    if (!(await exists(join(dir, f)))) return { kind: 'corrupt', reason: 'not a bare git repository' };
  // The commit and everything reachable from it (within the shallow boundary; missing blobs of a partial clone
  // are allowed) must be there, or the mirror is damaged (a deleted object, a truncated pack). One fsck says
  // both; only when it fails do we ask which.
  if (!(await gitOk(dir, fsckArgs(need.rev), o))) {
    if (await gitOk(dir, ['cat-file', '-e', `${need.rev}^{commit}`], o))
      return { kind: 'corrupt', reason: `\`git fsck --connectivity-only ${need.rev.slice(0, 12)}\` failed` };
    // We recorded this pin once: its commit vanishing means objects were lost, not that it was never fetched.
    const pinned = await gitOut(dir, ['rev-parse', '--verify', '-q', PIN_REF(need.rev)], o);
    if (pinned?.trim() === need.rev)
      return { kind: 'corrupt', reason: `commit ${need.rev.slice(0, 12)} is referenced but missing` };
    return { kind: 'incomplete', hasCommit: false };
  }
  if (need.full && (await exists(join(dir, 'shallow')))) return { kind: 'incomplete', hasCommit: true };
  if ((await isPartial(dir)) && (await missingBlobs(dir, need, ctx)).length > 0)
    return { kind: 'incomplete', hasCommit: true };
  // Keep the pin referenced (older mirrors, or a commit that arrived with a branch fetch).
  if ((await readFile(join(dir, PIN_REF(need.rev)), 'utf8').catch(() => '')).trim() !== need.rev)
    await git(dir, ['update-ref', PIN_REF(need.rev), need.rev], o);
  return { kind: 'complete' };
}

/**
 * Mirrors this process fetched or checked, by `dir` and rev: what the check covered and the mirror's objects
 * then (every file's name, size and mtime). A later need of the same commit (the patch step after the fetch
 * step, a checkout) asks git nothing while the objects are unchanged; a pack or object lost or rewritten since
 * changes the fingerprint, and the mirror is checked again.
 */
const checked = new Map<string, { fingerprint: string; full: boolean; cones: Set<string> }>();
const coneKey = (sparse: string[] | undefined) => (sparse && sparse.length > 0 ? sparse.join('\n') : '*');

/** Synchronous: a mirror holds tens of files (packs, loose objects of small fetches); awaiting each stat cost more. */
function fingerprint(dir: string): string {
  let objects: Dirent[] | undefined;
  try {
    objects = readdirSync(join(dir, 'objects'), { recursive: true, withFileTypes: true });
  } catch {}
  const files = (objects ?? []).filter((e) => !e.isDirectory()).map((e) => relative(dir, join(e.parentPath, e.name)));
  const parts = objects ? [] : ['objects!'];
  for (const f of [...files, 'shallow']) {
    const st = statSync(join(dir, f), { throwIfNoEntry: false });
    parts.push(`${f} ${st?.size} ${st?.mtimeMs}`);
  }
  return parts.sort().join('\n');
}

async function remember(dir: string, need: Pick<MirrorNeed, 'rev' | 'sparse' | 'full'>): Promise<void> {
  const key = `${dir}\0${need.rev}`;
  const fp = fingerprint(dir);
  const prev = checked.get(key);
  const same = prev?.fingerprint === fp;
  checked.set(key, {
    fingerprint: fp,
    full: need.full || (same && !!prev?.full),
    cones: new Set([...(same ? (prev?.cones ?? []) : []), (await isPartial(dir)) ? coneKey(need.sparse) : '*']),
  });
}

/** Whether this process found `need` complete in the mirror at `dir` before, and its objects did not change since. */
export async function checkedBefore(
  dir: string,
  need: Pick<MirrorNeed, 'rev' | 'sparse'> & { full?: boolean },
): Promise<boolean> {
  const c = checked.get(`${dir}\0${need.rev}`);
  if (!c || (need.full && !c.full) || !(c.cones.has('*') || c.cones.has(coneKey(need.sparse)))) return false;
  return c.fingerprint === fingerprint(dir);
}

/** The log file and cancellation every git of a source operation shares. */
export function gitOpts(ctx: SourceContext) {
  return { ...(ctx.logFile ? { logFile: ctx.logFile } : {}), ...(ctx.signal ? { signal: ctx.signal } : {}) };
}

/** Whether the mirror is a partial clone (`extensions.partialclone = origin`), read from its config without a git. */
export async function isPartial(dir: string): Promise<boolean> {
  const text = await readFile(join(dir, 'config'), 'utf8').catch(() => '');
  return /^\s*\[extensions\][^[]*^\s*partialclone\s*=\s*"?origin"?\s*$/im.test(text);
}

/** A git config value or subsection name, quoted; a newline or NUL cannot be in either and is refused. */
export function configQuote(v: string): string {
  if (/[\n\0]/.test(v))
    throw new BuildError('git.config-value', `a git config value may not contain a newline: ${JSON.stringify(v)}`);
  return `"${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** Git config text: `section` (with a quoted subsection if any) → key → value (quoted). */
export function configText(config: Record<string, Record<string, string | number | boolean>>): string {
  const keys = (kv: Record<string, string | number | boolean>) =>
    Object.entries(kv).map(([k, v]) => `\t${k} = ${configQuote(String(v))}\n`);
  return Object.entries(config)
    .map(([section, kv]) => `[${section}]\n${keys(kv).join('')}`)
    .join('');
}

/** A new repository at `gitDir`, written directly: what `git init` writes, without hooks or templates. */
export async function writeRepo(gitDir: string, config: Parameters<typeof configText>[0]): Promise<void> {
  for (const d of ['objects/info', 'objects/pack', 'refs/heads', 'refs/tags'])
    await mkdir(join(gitDir, d), { recursive: true });
  await writeFile(join(gitDir, 'HEAD'), 'ref: refs/heads/main\n');
  await writeFile(join(gitDir, 'config'), configText(config));
}

/**
 * A new bare mirror (no git started). The remote URL is deliberately NOT stored (it is passed with -c to each
 * fetch we run): a partial clone lazily fetches missing objects from its promisor remote on any read, and
 * without a URL such an accidental fetch fails at once instead of touching the network. nabla.url only
 * documents where the mirror came from.
 */
function initMirror(dir: string, need: MirrorNeed): Promise<void> {
  const partial = !!need.sparse && need.sparse.length > 0;
  return writeRepo(dir, {
    core: { repositoryformatversion: partial ? 1 : 0, filemode: true, bare: true },
    nabla: { url: need.url },
    gc: { auto: 0 },
    maintenance: { auto: false },
    ...(partial
      ? {
          extensions: { partialclone: 'origin' },
          'remote "origin"': { promisor: true, partialclonefilter: 'blob:none' },
        }
      : {}),
  });
}

async function fillMirror(
  dir: string,
  url: string,
  need: MirrorNeed,
  ctx: SourceContext,
  ops: FetchOp[],
  known: { hasCommit: boolean; fresh: boolean },
): Promise<void> {
  const partial = await isPartial(dir);
  const f: Filling = {
    dir,
    url,
    need,
    ctx,
    ops,
    o: gitOpts(ctx),
    remote: ['-c', `remote.origin.url=${url}`],
    filter: partial ? ['--filter=blob:none'] : [],
    errors: [],
    // What the caller knows spares a git: a new mirror has nothing, an inspected one said whether it has the commit.
    hasCommit: known.hasCommit,
  };
  // Set when a fetch wrote the pin ref itself (so the commit is there, connected: git fetch checks that).
  const pinned = !(await hasCommit(f)) && !need.full && (await fetchPinned(f, known.fresh));
  if (!(await hasCommit(f)) || (need.full && (await exists(join(dir, 'shallow'))))) await fetchAll(f);
  if (!pinned) await git(dir, ['update-ref', PIN_REF(need.rev), need.rev], f.o);
  if (partial) await fetchSparseBlobs(f);
  // A fetch into a new mirror checked what it wrote (git fetch's own connectivity check); one into an existing
  // mirror stops that check at the refs already there, which may themselves be damaged.
  if (!known.fresh) await checkConnectivity(f);
}

/** One fill of one mirror: what it needs, how git is called, and what was learnt so far. */
interface Filling {
  dir: string;
  url: string;
  need: MirrorNeed;
  ctx: SourceContext;
  ops: FetchOp[];
  o: ReturnType<typeof gitOpts>;
  /** The URL to fetch from (after mirror rules), given per call: the mirror's config keeps the canonical one. */
  remote: string[];
  filter: string[];
  /** Why each fetch failed, for the error when none worked. */
  errors: string[];
  /** Whether the pinned commit is in the mirror; `undefined` means ask git. */
  hasCommit: boolean | undefined;
}

async function hasCommit(f: Filling): Promise<boolean> {
  f.hasCommit ??= await gitOk(f.dir, ['cat-file', '-e', `${f.need.rev}^{commit}`], f.o);
  return f.hasCommit;
}

/**
 * Pinned: exactly the pinned commit. Works where the server allows a SHA in `want` (protocol v2 servers such as
 * GitHub, or uploadpack.allowReachableSHA1InWant / allowAnySHA1InWant). Depth 1, unless the mirror already has
 * complete history (a `clone: full` user of the same repository): then only the missing delta comes.
 */
async function fetchPinned(f: Filling, fresh: boolean): Promise<boolean> {
  const { dir, url, need, o } = f;
  const complete =
    !fresh && !(await exists(join(dir, 'shallow'))) && !!(await gitOut(dir, ['for-each-ref', '--count=1'], o))?.trim();
  const depth = complete ? [] : ['--depth=1'];
  f.ctx.onProgress?.(`${need.label}: fetching ${need.rev.slice(0, 12)}${complete ? '' : ' (depth 1)'} from ${url}`);
  f.ops.push({ label: need.label, url, kind: 'shallow' });
  try {
    await git(
      dir,
      [...f.remote, 'fetch', '-q', '--no-tags', ...depth, ...f.filter, 'origin', `+${need.rev}:${PIN_REF(need.rev)}`],
      o,
    );
    f.hasCommit = true;
    return true;
  } catch (e) {
    f.errors.push(`shallow fetch: ${gitTail(e)}`);
    f.hasCommit = undefined;
    return false;
  }
}

/** All: every branch and tag (the fallback, or a `clone: full` submodule); the pin must be among them. */
async function fetchAll(f: Filling): Promise<void> {
  const { dir, url, need, o, errors } = f;
  const shallow = await exists(join(dir, 'shallow'));
  f.ctx.onProgress?.(`${need.label}: fetching all branches and tags from ${url}`);
  f.ops.push({ label: need.label, url, kind: shallow ? 'unshallow' : 'full' });
  let fullOk = false;
  try {
    await git(
      dir,
      [
        ...f.remote,
        'fetch',
        '-q',
        ...(shallow ? ['--unshallow'] : []),
        ...f.filter,
        'origin',
        '+refs/heads/*:refs/heads/*',
        '+refs/tags/*:refs/tags/*',
      ],
      o,
    );
    fullOk = true;
  } catch (e) {
    errors.push(`full fetch: ${gitTail(e)}`);
  }
  f.hasCommit = undefined;
  if (!(await hasCommit(f)) && !fullOk) {
    // The server could not be read at all (network, authentication, a damaged upstream): that is not proof
    // that the commit is gone.
    throw new BuildError(
      'source.fetch-failed',
      `source ${need.label}: fetching ${need.rev} from ${url} failed: ${errors.join('; ')}`,
      {
        where: url,
        hint: 'check the URL and the network, or fetch from a mirror (--mirror <prefix>=<replacement>)',
      },
    );
  }
  if (!(await hasCommit(f))) {
    throw new BuildError(
      'source.pin-missing',
      `source ${need.label}: commit ${need.rev} does not exist in ${url} (not on any branch or tag there, and the server would not send it by id)`,
      {
        where: url,
        hint: 'the pin may have been force-pushed away or live in a fork: point the source at a URL that has it (--mirror or an override), or `nabla-build lock --update <source>`',
      },
    );
  }
  if (need.full && (await exists(join(dir, 'shallow')))) {
    throw new BuildError('source.fetch-failed', `source ${need.label}: could not fetch the full history from ${url}`, {
      where: url,
      hint: errors.join('; ') || 'check the URL and the network',
    });
  }
}

/** Sparse blobs: a partial mirror gets the blobs of the checked-out paths, by id, in one fetch. */
async function fetchSparseBlobs(f: Filling): Promise<void> {
  const { dir, url, need, ctx, o } = f;
  const missing = await missingBlobs(dir, need, ctx);
  if (missing.length === 0) return;
  ctx.onProgress?.(`${need.label}: fetching ${missing.length} blobs for the sparse paths from ${url}`);
  f.ops.push({ label: need.label, url, kind: 'blobs' });
  try {
    await git(
      dir,
      [
        ...f.remote,
        '-c',
        'fetch.negotiationAlgorithm=noop',
        'fetch',
        '-q',
        '--no-tags',
        '--no-write-fetch-head',
        '--recurse-submodules=no',
        '--filter=blob:none',
        '--stdin',
        'origin',
      ],
      { ...o, input: `${missing.join('\n')}\n` },
    );
  } catch (e) {
    throw new BuildError(
      'source.fetch-failed',
      `source ${need.label}: fetching the blobs of ${need.sparse?.join(', ') ?? 'the tree'} failed: ${gitTail(e)}`,
      {
        where: url,
        hint: 'the server must allow partial clone (uploadpack.allowFilter) and fetching objects by id',
      },
    );
  }
  const absent = await missingObjects(dir, need.rev, ctx);
  const still = missing.filter((oid) => absent.has(oid));
  if (still.length > 0) {
    throw new BuildError(
      'source.fetch-failed',
      `source ${need.label}: ${still.length} blobs are still missing after fetching them from ${url}`,
      { where: url },
    );
  }
}

/** Connectivity: the pinned commit's history is complete in the mirror (git fsck). */
async function checkConnectivity(f: Filling): Promise<void> {
  if (await gitOk(f.dir, fsckArgs(f.need.rev), f.o)) return;
  throw new BuildError(
    'source.fetch-failed',
    `source ${f.need.label}: the fetched history of ${f.need.rev} is incomplete (git fsck failed)`,
    { where: f.dir, hint: `remove ${f.dir} and run the fetch again` },
  );
}

/**
 * Blobs a checkout of `need.rev` with cone-mode sparse paths `need.sparse` reads and the (partial) mirror lacks.
 * Cone mode takes every file at the top level, the files directly inside each ancestor of a listed directory,
 * and everything below the listed directories.
 */
export async function missingBlobs(
  dir: string,
  need: Pick<MirrorNeed, 'rev' | 'sparse'>,
  ctx: SourceContext,
): Promise<string[]> {
  const missing = await missingObjects(dir, need.rev, ctx);
  if (missing.size === 0) return [];
  const tree = await git(dir, ['ls-tree', '-r', '-z', '--full-tree', need.rev], gitOpts(ctx));
  const wanted: string[] = [];
  for (const entry of tree.stdout.split('\0')) {
    if (!entry) continue;
    const tab = entry.indexOf('\t');
    const [, type, oid] = entry.slice(0, tab).split(' ');
    const path = entry.slice(tab + 1);
    if (type !== 'blob' || !oid || !missing.has(oid)) continue;
    if (inCone(path, need.sparse)) wanted.push(oid);
  }
  return [...new Set(wanted)];
}

/** Objects reachable from `rev` that a partial mirror lacks (never fetched: rev-list does not fetch lazily). */
async function missingObjects(dir: string, rev: string, ctx: SourceContext): Promise<Set<string>> {
  const out = await git(dir, ['rev-list', '--objects', '--no-walk', '--missing=print', rev], gitOpts(ctx));
  const missing = new Set<string>();
  for (const line of out.stdout.split('\n')) if (line.startsWith('?')) missing.add(line.slice(1).trim());
  return missing;
}

/** Whether cone-mode sparse checkout of `cone` materialises the file `path`. */
export function inCone(path: string, cone: string[] | undefined): boolean {
  if (!cone || cone.length === 0) return true;
  const slash = path.lastIndexOf('/');
  const parent = slash < 0 ? '' : path.slice(0, slash);
  if (parent === '') return true;
  for (const raw of cone) {
    const c = raw.replace(/^\/+|\/+$/g, '');
    if (c === '' || path.startsWith(`${c}/`)) return true;
    // Files directly inside an ancestor directory of a cone entry.
    if (c === parent || c.startsWith(`${parent}/`)) return true;
  }
  return false;
}
