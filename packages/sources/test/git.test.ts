import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { traceSpawnsTo } from '@nabla-build/exec';
import { BuildError, CancelledError, type GitSourceSpec, UsageError } from '@nabla-build/model';
import { FIXTURE_GIT_ENV, type FileTree, fixtureGitSync as g, startFileServer } from '@nabla-build/testing';
import { deadPid, tempDir } from '@nabla-build/testing/scratch';
import { resolveSource } from '@nabla-build/plan';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { measureFirstFetch } from '../../../scripts/bench/first-fetch.mjs';
import { conePatterns } from '../src/checkout-git.js';
import { checkoutGit, fetchGit, gitMirrorDir, type SourceContext } from '../src/index.js';
import { bareRepo, buildUpstreams, fixtureMirrors, frankenSpec, type Upstreams } from './upstreams.js';

let base: string;
let u: Upstreams;
let trace: string;

beforeAll(async () => {
  base = await tempDir('nb-git-');
  u = await buildUpstreams(base);
  trace = join(base, 'trace.jsonl');
});
afterAll(() => traceSpawnsTo(undefined));

let n = 0;
function newCtx(extra: Partial<SourceContext> = {}): SourceContext {
  n++;
  return { cacheDir: join(base, `cache${n}`), mirrors: fixtureMirrors(u), allowLocal: true, target: 'hello', ...extra };
}

/** Runs `fn` with the upstreams moved away: any attempt to reach them fails. */
async function withUpstreamsGone<T>(fn: () => Promise<T>): Promise<T> {
  const gone = `${u.up}-gone`;
  await rename(u.up, gone);
  try {
    return await fn();
  } finally {
    await rename(gone, u.up);
  }
}

/** Commands spawned while `fn` runs (from @nabla-build/exec's traceSpawnsTo). */
async function spawned<T>(fn: () => Promise<T>): Promise<{ result: T; commands: string[][] }> {
  await rm(trace, { force: true });
  traceSpawnsTo(trace);
  try {
    const result = await fn();
    const text = existsSync(trace) ? readFileSync(trace, 'utf8') : '';
    const commands = text
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const c = JSON.parse(l) as { command: string; args: string[] };
        return [c.command, ...c.args.filter((a, i, all) => a !== '-c' && all[i - 1] !== '-c')];
      });
    return { result, commands };
  } finally {
    traceSpawnsTo(undefined);
  }
}
/**
 * A deep history: `commits` commits touching small text files, plus `bigBlobs` incompressible blobs of `bigSize`
 * bytes added early and deleted later (history-only weight).
 */
function deepHistory(opts: { commits: number; bigBlobs: number; bigSize: number }): FileTree[] {
  return Array.from({ length: opts.commits }, (_, i) => {
    // Source-like but not trivially compressible: ~2 KiB of base64 per change.
    const tree: FileTree = {
      [`src/file${i % 20}.c`]: `/* revision ${i} */\n${randomBytes(1536).toString('base64')}\n`,
    };
    if (i < opts.bigBlobs) tree[`assets/big${i}.bin`] = randomBytes(opts.bigSize);
    if (i === Math.floor(opts.commits / 2)) for (let b = 0; b < opts.bigBlobs; b++) tree[`assets/big${b}.bin`] = null;
    if (i % 50 === 0) tree.README = `readme at ${i}\n`;
    return tree;
  });
}

const networkish = (cmds: string[][]) =>
  cmds.filter((c) => c[0] === 'git' && ['fetch', 'clone', 'ls-remote'].includes(c[1] ?? ''));

describe('fetchGit + checkoutGit with submodules', () => {
  let ctx: SourceContext;
  let spec: GitSourceSpec;
  let first: Awaited<ReturnType<typeof fetchGit>>;

  beforeAll(async () => {
    ctx = newCtx();
    spec = frankenSpec(u);
    first = await fetchGit(spec, ctx);
  });

  it('resolves every pin, submodule revs from the gitlinks, each repository in its own mirror', () => {
    expect(first.locked).toEqual({
      git: 'https://github.com/fixture/franken.git',
      rev: u.sha.franken[1],
      submodules: {
        llvm: { git: 'https://github.com/fixture/llvm-project.git', rev: u.sha.llvm[0] },
        musl: { git: 'git://github.com/fixture/musl.git', rev: u.sha.musl[2] },
        'musl/vendor/dep': { git: 'https://github.com/fixture/dep.git', rev: u.sha.dep[1] },
        solo5: { git: 'https://github.com/fixture/solo5.git', rev: u.sha.solo5[2] },
      },
    });
    expect(Object.keys(first.mirrors).sort()).toEqual(['', 'llvm', 'musl', 'musl/vendor/dep', 'solo5']);
    for (const dir of Object.values(first.mirrors)) expect(dir).toMatch(/\/git\/[0-9a-f]{16}-[a-z0-9-]+\.git$/);
    expect(first.mirrors.musl).toBe(gitMirrorDir(ctx.cacheDir, 'git://github.com/fixture/musl.git'));
    expect(first.bytesFetched).toBeGreaterThan(0);
    // Shallow fetches of exactly the pins, except solo5 (clone: full) which gets history and tags.
    expect(
      first.ops
        .filter((o) => o.kind === 'shallow')
        .map((o) => o.label)
        .sort(),
    ).toEqual(['frankenlibc', 'frankenlibc/llvm', 'frankenlibc/musl', 'frankenlibc/musl/vendor/dep']);
    expect(first.ops.find((o) => o.label === 'frankenlibc/solo5')?.kind).toBe('full');
    // The musl URL went through the user's git:// rule to a local bare repository.
    expect(first.ops.find((o) => o.label === 'frankenlibc/musl')?.url).toBe(join(u.up, 'musl.git'));
    expect(existsSync(join(first.mirrors[''] as string, 'shallow'))).toBe(true);
    expect(existsSync(join(first.mirrors.solo5 as string, 'shallow'))).toBe(false);
  });

  it('keeps blobs outside the sparse cone out of a partial mirror', () => {
    const missing = g(
      first.mirrors.llvm as string,
      'rev-list',
      '--objects',
      '--no-walk',
      '--missing=print',
      u.sha.llvm[0] as string,
    )
      .split('\n')
      .filter((l) => l.startsWith('?'))
      .map((l) => l.slice(1));
    expect(missing).toContain(u.llvmBigBlob);
    expect(missing).toHaveLength(2); // clang/big.bin and llvm/lib/IR/Core.cpp
    expect(first.ops.find((o) => o.label === 'frankenlibc/llvm' && o.kind === 'blobs')).toBeDefined();
  });

  it('a second fetch touches no network: the upstreams can be gone', async () => {
    const { result, commands } = await spawned(() => withUpstreamsGone(() => fetchGit(spec, ctx)));
    expect(result.locked).toEqual(first.locked);
    expect(result.ops).toEqual([]);
    expect(result.bytesFetched).toBe(0);
    expect(networkish(commands)).toEqual([]);
  });

  it('starts few gits: repositories written directly, no fsck of a mirror it just fetched, nothing asked twice', async () => {
    const c = newCtx();
    const subcommand = (cmds: string[][]) => cmds.map((x) => x.slice(1).join(' '));
    const fetched = await spawned(() => fetchGit(spec, c));
    expect(subcommand(fetched.commands).filter((s) => /^(init|config|fsck|rev-parse)\b/.test(s))).toEqual([]);
    // The gitlinks of one parent are read with one ls-tree (the partial llvm mirror reads its tree once more).
    expect(fetched.commands.filter((x) => x[1] === 'ls-tree' && !x.includes('-r')).length).toBe(2);
    // The same need again in this process: the mirrors are unchanged since, so git is not asked at all.
    expect((await spawned(() => fetchGit(spec, c))).commands).toEqual([]);
    const dest = join(base, 'co-few', 'frankenlibc');
    const co = await spawned(() => checkoutGit(spec, fetched.result.locked, dest, c));
    const gits = subcommand(co.commands);
    expect(
      gits.filter((s) => /^(init|cat-file|rev-list|update-ref)\b/.test(s) || /^config (?!-f \.gitmodules)/.test(s)),
    ).toEqual([]);
    expect(gits.filter((s) => s.startsWith('checkout ')).length).toBe(co.result.trees.length);
    // No status of a fresh checkout, tags and sparse patterns written directly; commit times read from loose
    // objects, the rest with one git (and right either way).
    expect(gits.filter((s) => /^(status|show|for-each-ref|sparse-checkout)\b/.test(s))).toEqual([]);
    expect(gits.filter((s) => s.startsWith('log ')).length).toBeLessThanOrEqual(1);
    for (const t of co.result.trees) {
      const time = g(gitMirrorDir(c.cacheDir, t.git), 'show', '-s', '--format=%ct', t.rev);
      expect([t.path, t.committed]).toEqual([t.path, Number(time)]);
    }
    expect(g(dest, 'config', 'submodule.solo5.url')).toBe(
      gitMirrorDir(c.cacheDir, fetched.result.locked.submodules.solo5?.git as string),
    );
  });

  it('checks out the tree from the mirrors only, with the right submodule layouts, clean', async () => {
    const dest = join(base, 'co1', 'frankenlibc');
    const { result, commands } = await spawned(() =>
      withUpstreamsGone(() => checkoutGit(spec, first.locked, dest, ctx)),
    );
    expect(networkish(commands)).toEqual([]);
    expect(result.trees.map((t) => [t.path, t.kind])).toEqual([
      ['', 'root'],
      ['musl', 'submodule'],
      ['musl/vendor/dep', 'submodule'],
      ['solo5', 'full'],
      ['llvm', 'submodule'],
    ]);
    expect(g(dest, 'rev-parse', 'HEAD')).toBe(u.sha.franken[1]);
    expect(g(dest, 'status', '--porcelain', '--ignore-submodules=none')).toBe('');
    // Ordinary submodules: .git is a gitlink file into the parent's .git/modules, relative.
    expect(await readFile(join(dest, 'musl', '.git'), 'utf8')).toBe('gitdir: ../.git/modules/musl\n');
    expect(await readFile(join(dest, 'musl', 'vendor', 'dep', '.git'), 'utf8')).toBe(
      'gitdir: ../../../.git/modules/musl/modules/dep\n',
    );
    expect(g(join(dest, '.git', 'modules', 'musl'), 'config', 'core.worktree')).toBe('../../../musl');
    expect(g(join(dest, 'musl'), 'rev-parse', 'HEAD')).toBe(u.sha.musl[2]);
    expect(g(join(dest, 'musl', 'vendor', 'dep'), 'rev-parse', 'HEAD')).toBe(u.sha.dep[1]);
    expect(await readFile(join(dest, 'musl', 'vendor', 'dep', 'dep.h'), 'utf8')).toBe('#define DEP 2\n');
    // git sees proper, initialised submodules at their pins (no -, + or U prefix).
    const status = g(dest, 'submodule', 'status', '--recursive');
    expect(status.split('\n').map((l) => l[0])).toEqual([' ', ' ', ' ', ' ']);
    // clone: full → a real .git directory; Solo5's version script works, with git describe from the tags.
    expect((await lstat(join(dest, 'solo5', '.git'))).isDirectory()).toBe(true);
    const env = { ...process.env, ...FIXTURE_GIT_ENV };
    const version = execFileSync('sh', ['scripts/gen_version_h.sh'], { cwd: join(dest, 'solo5'), env })
      .toString()
      .trim();
    expect(version).toBe(`#define SOLO5_VERSION "v0.6.4-2-g${(u.sha.solo5[2] as string).slice(0, 7)}"`);
    // Sparse: the cone and the top-level files only.
    expect(existsSync(join(dest, 'llvm', 'libcxx', 'include', 'vector'))).toBe(true);
    expect(existsSync(join(dest, 'llvm', 'libunwind', 'src', 'Unwind.c'))).toBe(true);
    expect(existsSync(join(dest, 'llvm', 'README.txt'))).toBe(true);
    expect(existsSync(join(dest, 'llvm', 'clang'))).toBe(false);
    expect(existsSync(join(dest, 'llvm', 'llvm'))).toBe(false);
    // .gitmodules keeps its git:// URLs; the config points at the local mirrors.
    expect(await readFile(join(dest, '.gitmodules'), 'utf8')).toContain('url = git://github.com/fixture/musl.git');
    expect(g(dest, 'config', 'submodule.musl.url')).toBe(first.mirrors.musl);
    expect(g(dest, 'config', 'submodule.solo5.url')).toBe(first.mirrors.solo5);
    // No temp dir left next to the checkout.
    expect(await readdir(join(base, 'co1'))).toEqual(['frankenlibc']);
    // All internal links are relative: the tree still works after being moved.
    const moved = join(base, 'co1-moved');
    await rename(join(base, 'co1'), moved);
    expect(g(join(moved, 'frankenlibc'), 'status', '--porcelain', '--ignore-submodules=none')).toBe('');
    expect(g(join(moved, 'frankenlibc', 'musl', 'vendor', 'dep'), 'rev-parse', 'HEAD')).toBe(u.sha.dep[1]);
  });

  it('refuses an existing destination and cleans temp dirs of dead checkouts', async () => {
    const dest = join(base, 'co2', 'frankenlibc');
    const stale = `${dest}.tmp-${deadPid()}`;
    await mkdir(join(stale, 'half-written'), { recursive: true });
    await checkoutGit(spec, first.locked, dest, ctx);
    expect(existsSync(stale)).toBe(false);
    await expect(checkoutGit(spec, first.locked, dest, ctx)).rejects.toMatchObject({ code: 'source.checkout-exists' });
  });

  it('checkout without a prior fetch fails with the fetch hint, never fetching', async () => {
    const empty = newCtx();
    const { commands } = await spawned(async () => {
      await expect(checkoutGit(spec, first.locked, join(base, 'co4'), empty)).rejects.toMatchObject({
        code: 'source.not-fetched',
        hint: expect.stringContaining('nabla-build fetch hello'),
      });
    });
    expect(networkish(commands)).toEqual([]);
    expect(existsSync(join(base, 'co4'))).toBe(false);
  });
});

describe('pins, overrides and errors', () => {
  it('a recipe submodule rev that differs from the gitlink names both; an override replaces it', async () => {
    const ctx = newCtx();
    const spec = frankenSpec(u);
    const wrong = structuredClone(spec);
    (wrong.submodules[1] as { rev: string }).rev = u.sha.solo5[1] as string;
    const err = await fetchGit(wrong, ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err).toMatchObject({ code: 'source.submodule-mismatch' });
    expect((err as Error).message).toContain(u.sha.solo5[1]);
    expect((err as Error).message).toContain(u.sha.solo5[2]);
    expect((err as Error).message).toContain('frankenlibc/solo5');

    const planned = resolveSource(wrong, undefined, { 'frankenlibc/solo5': { rev: u.sha.solo5[1] as string } });
    const r = await fetchGit(planned.spec, ctx, planned);
    expect(r.locked.submodules.solo5?.rev).toBe(u.sha.solo5[1]);
    // An override that pins the superproject at the recipe's own rev does not move it: gitlinks are still checked.
    const same = resolveSource(wrong, undefined, { frankenlibc: { rev: wrong.rev } });
    expect([same.overridden, same.moved]).toEqual([['frankenlibc'], []]);
    await expect(fetchGit(same.spec, ctx, same)).rejects.toMatchObject({ code: 'source.submodule-mismatch' });
  });

  it('every unreachable submodule is tried and named in one error', async () => {
    const ctx = newCtx();
    const spec = frankenSpec(u);
    const subs = spec.submodules.slice(0, 2);
    expect(subs).toHaveLength(2);
    const overrides = Object.fromEntries(
      subs.map((s) => [`frankenlibc/${s.path}`, { git: `file://${join(base, `absent-${s.path}.git`)}` }]),
    );
    const planned = resolveSource(spec, undefined, overrides);
    const err = await fetchGit(planned.spec, ctx, planned).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err).toMatchObject({ code: 'source.submodules-missing', where: 'frankenlibc' });
    const message = (err as Error).message;
    expect(message).toMatch(/^2 submodules of frankenlibc could not be fetched:\n/);
    for (const s of subs) expect(message).toContain(`absent-${s.path}.git`);
  });

  it('an override of the superproject (URL and rev) takes the submodule revs from its gitlinks', async () => {
    const ctx = newCtx();
    const spec = frankenSpec(u);
    // A fork of the superproject at another URL: the commit that moved musl back.
    const fork = join(base, 'fork-franken.git');
    g(base, 'clone', '-q', '--bare', '--no-local', join(u.up, 'franken.git'), fork);
    const simple = {
      ...spec,
      submodules: spec.submodules.map((s) => (s.path === 'musl' ? { ...s, submodules: [] } : s)),
    };
    const planned = resolveSource(simple, undefined, {
      frankenlibc: { git: `file://${fork}`, rev: u.sha.franken[2] as string },
    });
    const r = await fetchGit(planned.spec, ctx, planned);
    expect(r.locked.git).toBe(`file://${fork}`);
    expect(r.locked.rev).toBe(u.sha.franken[2]);
    expect(r.locked.submodules.musl?.rev).toBe(u.sha.musl[0]);
  });

  it('a pin that does not exist upstream is source.pin-missing naming source, URL and rev', async () => {
    const ctx = newCtx();
    const spec: GitSourceSpec = {
      kind: 'git',
      name: 'solo5',
      git: 'https://github.com/fixture/solo5.git',
      rev: 'f'.repeat(40),
      submodules: [],
    };
    const err = (await fetchGit(spec, ctx).catch((e: unknown) => e)) as BuildError;
    expect(err.code).toBe('source.pin-missing');
    expect(err.message).toContain('solo5');
    expect(err.message).toContain('f'.repeat(40));
    expect(err.message).toContain(`file://${u.up}/solo5.git`);
    // No half-made mirror is left behind.
    expect(existsSync(join(ctx.cacheDir, 'git')) ? await readdir(join(ctx.cacheDir, 'git')) : []).toEqual([]);
  });

  it("an unreachable repository is source.fetch-failed (not pin-missing), with git's reason", async () => {
    const spec: GitSourceSpec = {
      kind: 'git',
      name: 'ghost',
      git: `file://${base}/no-such-repo.git`,
      rev: 'e'.repeat(40),
      submodules: [],
    };
    const err = (await fetchGit(spec, newCtx()).catch((e: unknown) => e)) as BuildError;
    expect(err.code).toBe('source.fetch-failed');
    expect(err.message).toContain('ghost');
    expect(err.message).toMatch(/does not appear to be a git repository|not found|No such file/);
  });

  it('a pin that is not a full SHA is a UsageError', async () => {
    const spec: GitSourceSpec = {
      kind: 'git',
      name: 'solo5',
      git: 'https://github.com/fixture/solo5.git',
      rev: 'b326416',
      submodules: [],
    };
    await expect(fetchGit(spec, newCtx())).rejects.toBeInstanceOf(UsageError);
  });

  it('offline with an empty cache fails at once naming the source and URL; with a warm cache it works', async () => {
    const ctx = newCtx({ offline: true });
    const spec = frankenSpec(u);
    const t0 = Date.now();
    const { result: err, commands } = await spawned(() =>
      fetchGit(spec, ctx).then(
        () => undefined as unknown as BuildError,
        (e: unknown) => e as BuildError,
      ),
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe('source.offline');
    expect(err.message).toContain('frankenlibc');
    expect(err.message).toContain(`file://${u.up}/franken.git`);
    expect(err.hint).toContain('nabla-build fetch hello');
    expect(commands).toEqual([]);

    const warm = { ...ctx, offline: false };
    await fetchGit(spec, warm);
    const again = await spawned(() => fetchGit(spec, ctx));
    expect(again.result.ops).toEqual([]);
    expect(networkish(again.commands)).toEqual([]);
  });
});

describe('cache robustness', () => {
  const solo5: () => GitSourceSpec = () => ({
    kind: 'git',
    name: 'solo5',
    git: 'https://github.com/fixture/solo5.git',
    rev: u.sha.solo5[2] as string,
    submodules: [],
  });

  it('recovers from an interrupted mirror creation (leftover temp dir, stale lock)', async () => {
    const ctx = newCtx();
    const mirror = gitMirrorDir(ctx.cacheDir, solo5().git);
    const pid = deadPid();
    const leftover = `${mirror}.tmp-${pid}-0badf00d`;
    await mkdir(join(leftover, 'objects', 'pack'), { recursive: true });
    await writeFile(join(leftover, 'objects', 'pack', 'tmp_pack_abc'), 'half a pack');
    await mkdir(`${mirror}.lock`);
    await writeFile(join(`${mirror}.lock`, 'pid'), String(pid));
    const r = await fetchGit(solo5(), ctx);
    expect(r.ops.length).toBeGreaterThan(0);
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(`${mirror}.lock`)).toBe(false);
    expect(g(mirror, 'cat-file', '-t', u.sha.solo5[2] as string)).toBe('commit');
  });

  it('resumes into a mirror that an interrupted fetch left behind', async () => {
    const ctx = newCtx();
    const older = { ...solo5(), rev: u.sha.solo5[0] as string };
    await fetchGit(older, ctx);
    const mirror = gitMirrorDir(ctx.cacheDir, older.git);
    // What a killed `git fetch` leaves: a temp pack, a ref lock.
    await writeFile(join(mirror, 'objects', 'pack', 'tmp_pack_XXXXXX'), 'partial');
    await mkdir(join(mirror, 'refs', 'nabla', 'pins'), { recursive: true });
    await writeFile(join(mirror, 'refs', 'nabla', 'pins', `${u.sha.solo5[2]}.lock`), '');
    const r = await fetchGit(solo5(), ctx);
    expect(r.ops.map((o) => o.kind)).toEqual(['shallow']);
    expect(g(mirror, 'cat-file', '-t', u.sha.solo5[2] as string)).toBe('commit');
  });

  it('detects a damaged mirror and re-creates it (and says so offline)', async () => {
    const ctx = newCtx();
    await fetchGit(solo5(), ctx);
    const mirror = gitMirrorDir(ctx.cacheDir, solo5().git);
    // Lose the tree of the pinned commit.
    const tree = g(mirror, 'rev-parse', `${u.sha.solo5[2]}^{tree}`);
    const loose = join(mirror, 'objects', tree.slice(0, 2), tree.slice(2));
    if (existsSync(loose)) await rm(loose);
    else {
      // Packed: corrupt the pack instead.
      const packs = (await readdir(join(mirror, 'objects', 'pack'))).filter((f) => f.endsWith('.pack'));
      for (const p of packs) await writeFile(join(mirror, 'objects', 'pack', p), 'garbage');
    }
    const offline = (await fetchGit(solo5(), { ...ctx, offline: true }).catch((e: unknown) => e)) as BuildError;
    expect(offline.code).toBe('source.offline');
    expect(offline.message).toMatch(/damaged/);
    const r = await fetchGit(solo5(), ctx);
    expect(r.ops[0]?.kind).toBe('recreate');
    expect(g(mirror, 'fsck', '--connectivity-only', u.sha.solo5[2] as string)).toBe('');
  });
});

describe('servers that cannot serve one commit', () => {
  it('falls back to a full fetch over dumb HTTP, and a second fetch sends no request', async () => {
    const server = await startFileServer({}, { root: u.up });
    try {
      const ctx = newCtx({ mirrors: [] });
      const spec: GitSourceSpec = {
        kind: 'git',
        name: 'solo5',
        git: `${server.url}/solo5.git`,
        rev: u.sha.solo5[1] as string,
        submodules: [],
      };
      const r = await fetchGit(spec, ctx);
      expect(r.ops.map((o) => o.kind)).toEqual(['shallow', 'full']);
      expect(server.requests).toBeGreaterThan(0);
      const count = server.requests;
      const again = await fetchGit(spec, ctx);
      expect(again.ops).toEqual([]);
      expect(server.requests).toBe(count);
    } finally {
      await server.close();
    }
  });

  it('cancelling a fetch mid-transfer leaves no mirror; the next fetch succeeds', async () => {
    const deep = join(base, 'deep-slow');
    const rev = (await bareRepo(deep, 'deep', deepHistory({ commits: 40, bigBlobs: 2, bigSize: 1024 * 1024 }))).at(-1);
    // A dumb-HTTP server that throttles downloads: 32 KiB every 50 ms.
    const throttled = await startFileServer({}, { root: deep, throttle: 32 * 1024 });
    try {
      const ctx = newCtx({ mirrors: [] });
      const spec: GitSourceSpec = {
        kind: 'git',
        name: 'deep',
        git: `${throttled.url}/deep.git`,
        rev: rev as string,
        submodules: [],
      };
      const ac = new AbortController();
      const p = fetchGit(spec, { ...ctx, signal: ac.signal });
      await throttled.waitFor(/\.pack$/);
      await new Promise((r) => setTimeout(r, 200));
      ac.abort();
      await expect(p).rejects.toBeInstanceOf(CancelledError);
      const gitDir = join(ctx.cacheDir, 'git');
      expect((await readdir(gitDir)).filter((f) => !f.endsWith('.lock'))).toEqual([]);
      const r = await fetchGit(spec, ctx);
      expect(g(gitMirrorDir(ctx.cacheDir, spec.git), 'cat-file', '-t', spec.rev)).toBe('commit');
      expect(r.bytesFetched).toBeGreaterThan(2 * 1024 * 1024);
    } finally {
      await throttled.close();
    }
  });
});

describe('bytes fetched', () => {
  it('a pinned-commit fetch of a deep repository moves far fewer bytes than git clone', async () => {
    const deep = join(base, 'deep');
    const shas = await bareRepo(deep, 'deep', deepHistory({ commits: 400, bigBlobs: 6, bigSize: 1024 * 1024 }));
    const pin = shas[350] as string;
    const m = await measureFirstFetch(`file://${deep}/deep.git`, { rev: pin });
    expect(m.rev).toBe(pin);
    expect(m.clone.bytes).toBeGreaterThan(6 * 1024 * 1024);
    expect(m.ours.bytes).toBeGreaterThan(0);
    expect(m.ours.bytes / m.clone.bytes).toBeLessThan(0.05);
    expect(m.ratio).toBeCloseTo(m.ours.bytes / m.clone.bytes);
    console.log(
      `[bench] deep repo (400 commits, 6 MiB of history-only blobs): ours ${m.ours.bytes} B in ${m.ours.ms} ms, git clone ${m.clone.bytes} B in ${m.clone.ms} ms, ratio ${m.ratio.toFixed(4)}`,
    );
    // Sparse (partial clone): big trees outside the cone at the pinned commit itself stay upstream.
    const wide = join(base, 'wide');
    await bareRepo(wide, 'llvm', [
      { 'libcxx/include/vector': '// vector\n', 'clang/huge.bin': randomBytes(4 * 1024 * 1024).toString('base64') },
    ]);
    const sparse = await measureFirstFetch(`file://${wide}/llvm.git`, { sparse: ['libcxx'] });
    expect(sparse.ours.bytes / sparse.clone.bytes).toBeLessThan(0.01);
    console.log(
      `[bench] sparse fetch (libcxx; a 4 MiB random blob, base64, outside the cone): ours ${sparse.ours.bytes} B in ${sparse.ours.ms} ms, git clone ${sparse.clone.bytes} B in ${sparse.clone.ms} ms, ratio ${sparse.ratio.toFixed(4)}`,
    );
    // Default rev = the remote HEAD.
    const head = await measureFirstFetch(`file://${deep}/deep.git`);
    expect(head.rev).toBe(shas[shas.length - 1]);
  });
});

beforeEach(() => {
  traceSpawnsTo(undefined);
});

describe('cone-mode sparse checkout written without git', () => {
  it('conePatterns gives the file `git sparse-checkout set --cone` writes', async () => {
    const repo = join(await tempDir('nb-cone-'), 'r');
    g('/', 'init', '-q', repo);
    for (const dirs of [
      ['libcxx', 'libcxxabi', 'libunwind', 'llvm/cmake', 'llvm/utils'],
      ['a/b/c', 'we ird/x', 'a/b', 'a/b/d/', 'z'],
    ]) {
      g(repo, 'sparse-checkout', 'set', '--cone', ...dirs);
      expect(conePatterns(dirs)).toBe(readFileSync(join(repo, '.git', 'info', 'sparse-checkout'), 'utf8'));
    }
  });
});
