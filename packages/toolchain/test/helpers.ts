import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '@nabla-build/exec';
import type { RecipeSet, TargetRecipe } from '@nabla-build/model';
import { FIXTURE_GIT_ENV, type FixtureUpstreams } from '@nabla-build/testing';
import type { PackageTarball } from '../src/index.js';

const git = (cwd: string, args: string[]) =>
  run('git', ['-c', 'protocol.file.allow=always', ...args], { cwd, env: FIXTURE_GIT_ENV });

/**
 * A frankenlibc checkout made with plain git, the way upstream's README does it: Solo5 cloned in full before
 * `git submodule update` (its gen_version_h.sh needs a .git directory), the submodule URLs of .gitmodules
 * (git://github.com/...) pointed at the fixture repositories, then frankenlibc's patches/solo5 series and the
 * project's Solo5 patches applied with `patch -p1`.
 */
export async function checkoutFrankenlibc(
  fx: FixtureUpstreams,
  dest: string,
  opts: { projectPatches?: boolean } = {},
): Promise<void> {
  const repos = fx.repos;
  await git('/', ['clone', '-q', repos.frankenlibc.url, dest]);
  await git(dest, ['checkout', '-q', repos.frankenlibc.rev]);
  await git(dest, ['clone', '-q', repos.solo5.url, 'solo5']);
  await git(dest, ['submodule', 'init']);
  for (const [name, repo] of [
    ['linux', repos.linux],
    ['musl', repos.musl],
    ['llvm', repos.llvm],
    ['solo5', repos.solo5],
  ] as const) {
    await git(dest, ['config', `submodule.${name}.url`, repo.url]);
  }
  await git(dest, ['submodule', 'update', '-q']);
  for (const p of (await readdir(join(dest, 'patches', 'solo5'))).sort()) {
    await run('patch', ['-p1', '-s', '-F0'], { cwd: dest, input: await readFile(join(dest, 'patches', 'solo5', p)) });
  }
  if (opts.projectPatches !== false) {
    for (const p of fx.projectPatches)
      await run('patch', ['-p1', '-s', '-F0'], { cwd: join(dest, 'solo5'), input: await readFile(p) });
  }
}

/** A rumprun-packages checkout at the fixture's pin. */
export async function checkoutPackages(fx: FixtureUpstreams, dest: string): Promise<void> {
  await git('/', ['clone', '-q', fx.repos['rumprun-packages'].url, dest]);
  await git(dest, ['checkout', '-q', fx.repos['rumprun-packages'].rev]);
}

/** PIDs of processes whose working directory is inside `dir` (leftovers of a build there). */
export async function processesIn(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cwd = await readlink(`/proc/${e}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(Number(e));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** `pgrep -f PATTERN` → PIDs (none: empty). */
export async function pgrep(pattern: string): Promise<number[]> {
  try {
    const r = await run('pgrep', ['-f', pattern], { cwd: '/' });
    return r.stdout.split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

export async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * PIDs of processes whose environment holds `NAME=value` (`marker`). Every process of a build inherits the
 * environment it was started with, wherever it runs (also in another mount namespace, where its working
 * directory is not a host path), so a unique value is a marker of a build's whole process tree.
 */
export async function processesWithEnv(marker: string): Promise<number[]> {
  const pids: number[] = [];
  const needle = Buffer.from(`\0${marker}\0`);
  for (const e of await readdir('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const env = Buffer.concat([Buffer.from([0]), await readFile(`/proc/${e}/environ`), Buffer.from([0])]);
      if (env.includes(needle)) pids.push(Number(e));
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

/** sha256 of every regular file and the target of every link under `dir`, by relative path (sorted). */
export async function treeDigest(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string, rel: string): Promise<void> => {
    for (const name of (await readdir(d)).sort()) {
      const p = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(p);
      if (st.isDirectory()) await walk(p, r);
      else if (st.isSymbolicLink()) out[r] = `-> ${await readlink(p)}`;
      else
        out[r] = `${(st.mode & 0o7777).toString(8)} ${createHash('sha256')
          .update(await readFile(p))
          .digest('hex')}`;
    }
  };
  await walk(dir, '');
  return out;
}

/** The recipe of a target (throws in the test when the shipped recipes do not have it). */
export function targetOf(recipes: RecipeSet, name: string): TargetRecipe {
  const t = recipes.targets.get(name);
  if (!t) throw new Error(`no recipe ${name}`);
  return t;
}

/** A target's tarball sources, as buildPackage takes them, served from the fixture's files. */
export function tarballsFor(fx: FixtureUpstreams, t: TargetRecipe): PackageTarball[] {
  return t.sources.flatMap((s) =>
    s.kind === 'tarball'
      ? [
          {
            name: s.name,
            file: s.file,
            ...(s.placeIn ? { placeIn: s.placeIn } : {}),
            path: fx.tarballs[s.name as keyof typeof fx.tarballs].path,
          },
        ]
      : [],
  );
}
