import { mkdtempSync } from 'node:fs';
import { chmod, cp, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '@nabla-build/exec';
import { CancelledError, type RecipeSet, type TargetRecipe, type ToolchainRecipe } from '@nabla-build/model';
import { loadRecipes } from '@nabla-build/recipes';
import { createFixtureUpstreams, type FixtureUpstreams, repositoryRoot } from '@nabla-build/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildPackage,
  buildEnv,
  buildToolchain,
  CANONICAL_ROOT,
  CANONICAL_TOOLCHAIN,
  canonicalRootArgv,
  canonicalRootSupport,
  collectArtifacts,
} from '../src/index.js';
import {
  checkoutFrankenlibc,
  checkoutPackages,
  pgrep,
  processesWithEnv,
  tarballsFor,
  targetOf,
  treeDigest,
  until,
} from './helpers.js';

// Identical inputs built in two cache directories of different path lengths: with a canonical build root the
// artifacts are byte-identical, without one they are not (they hold the directories' paths). Real builds of the
// fixture upstreams with the production recipes and the host gcc. Under CI=true a host without canonical root
// support fails instead of skipping.
const support = await canonicalRootSupport();
const unsupported = support === 'none' && process.env.CI !== 'true';

let fx: FixtureUpstreams;
let work: string;
let recipes: RecipeSet;
let toolchain: ToolchainRecipe;
/** A pristine checkout of each tree, copied for every build. */
let tcPristine: string;
let pkgPristine: string;

const target = (name: string): TargetRecipe => targetOf(recipes, name);

/** One cache directory: its toolchain and python3 trees, built with or without a canonical root. */
interface Built {
  cache: string;
  tc: string;
  pkg: string;
  out: string;
  canonical: { toolchain: boolean; package: boolean };
}

async function buildAll(cache: string, canonical: boolean): Promise<Built> {
  const tc = join(cache, 'steps', 'toolchain', 'frankenlibc-0123456789abcdef', 'tree');
  const pkg = join(cache, 'steps', 'package', 'python3-0123456789abcdef', 'work');
  const out = join(cache, 'out');
  await mkdir(join(tc, '..'), { recursive: true });
  await mkdir(join(pkg, '..'), { recursive: true });
  await cp(tcPristine, tc, { recursive: true, verbatimSymlinks: true });
  await cp(pkgPristine, pkg, { recursive: true, verbatimSymlinks: true });
  const t = await buildToolchain({
    baseEnv: process.env,
    recipe: toolchain,
    treeDir: tc,
    jobs: 4,
    logFile: join(cache, 'logs', 'toolchain.log'),
    ...(canonical ? { canonical: { toolchain: tc } } : {}),
  });
  // The outputs are verified, and reported, on the host.
  expect(t.outputs).toEqual(toolchain.outputs.map((o) => join(tc, o)));
  for (const name of ['hello', 'nabla-run', 'solo5-hello']) await collectArtifacts(target(name), tc, join(out, name));
  const py = target('python3');
  const p = await buildPackage({
    baseEnv: process.env,
    target: py,
    treeDir: pkg,
    toolchainDir: tc,
    binDir: 'rump/bin',
    tarballs: tarballsFor(fx, py),
    jobs: 4,
    logFile: join(cache, 'logs', 'python3.log'),
    ...(canonical ? { canonical: { toolchain: tc, work: pkg } } : {}),
  });
  await collectArtifacts(py, pkg, join(out, 'python3'));
  return { cache, tc, pkg, out, canonical: { toolchain: t.canonical, package: p.canonical } };
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nabla-repro-'));
  fx = await createFixtureUpstreams(join(work, 'upstreams'));
  recipes = loadRecipes(join(repositoryRoot(), 'recipes'));
  toolchain = recipes.toolchains.get('frankenlibc') as ToolchainRecipe;
  tcPristine = join(work, 'pristine', 'frankenlibc');
  pkgPristine = join(work, 'pristine', 'rumprun-packages');
  await checkoutFrankenlibc(fx, tcPristine);
  await checkoutPackages(fx, pkgPristine);
});

afterAll(async () => {
  await fx?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe.skipIf(unsupported)('reproducible builds across cache directories', () => {
  let canon: [Built, Built];

  it('with a canonical build root: toolchain and python3 artifacts are byte-identical', async () => {
    canon = [
      await buildAll(join(work, 'c1'), true),
      await buildAll(join(work, 'a-much-longer-cache-directory', 'with', 'more', 'levels', 'c2'), true),
    ];
    for (const b of canon) expect(b.canonical).toEqual({ toolchain: true, package: true });
    const [a, b] = [await treeDigest(canon[0].out), await treeDigest(canon[1].out)];
    expect(Object.keys(a)).toEqual(
      expect.arrayContaining(['hello/hello.nabla', 'nabla-run/nabla-run', 'python3/python3.nabla']),
    );
    expect(Object.keys(a).length).toBeGreaterThan(300);
    expect(b).toEqual(a);
    // So is the toolchain itself: libc.a (built with -g) and the wrappers, which name the canonical tree.
    expect(await treeDigest(join(canon[1].tc, 'rump'))).toEqual(await treeDigest(join(canon[0].tc, 'rump')));
    const wrapper = await readFile(join(canon[0].tc, 'rump/bin/x86_64-rumprun-linux-gcc'), 'utf8');
    expect(wrapper).toContain(`-isystem ${CANONICAL_TOOLCHAIN}/rump/include`);
    for (const x of canon) {
      for (const f of ['hello/hello.nabla', 'python3/python3.nabla']) {
        const bin = await readFile(join(x.out, f));
        expect(bin.includes(`${CANONICAL_ROOT}/`)).toBe(true); // DWARF paths are the canonical ones…
        expect(bin.includes(x.cache)).toBe(false); // …and the cache directory appears nowhere
      }
    }
    // The binaries work outside the namespace (they are static; only the build needed the canonical paths).
    const py = await run(join(canon[1].out, 'python3/python3.nabla'), ['-c', "print('hello')"], { cwd: work });
    expect(py.stdout).toBe('hello\n');
  });

  it('without one, the same inputs give different binaries, each holding its cache directory', async () => {
    const plain = [
      await buildAll(join(work, 'p1'), false),
      await buildAll(join(work, 'a-much-longer-cache-directory', 'with', 'more', 'levels', 'p2'), false),
    ];
    for (const b of plain) expect(b.canonical).toEqual({ toolchain: false, package: false });
    const [a, b] = [await treeDigest(plain[0]?.out as string), await treeDigest(plain[1]?.out as string)];
    expect(Object.keys(b)).toEqual(Object.keys(a));
    const differing = Object.keys(a).filter((k) => a[k] !== b[k]);
    console.log(
      `without a canonical root, ${differing.length} of ${Object.keys(a).length} files differ: ${differing.join(' ')}`,
    );
    expect(differing).toEqual(expect.arrayContaining(['hello/hello.nabla', 'python3/python3.nabla']));
    for (const x of plain) {
      const bin = await readFile(join(x.out, 'python3/python3.nabla'));
      expect(bin.includes(x.tc)).toBe(true);
      expect(bin.includes(`${CANONICAL_ROOT}/`)).toBe(false);
    }
  });

  it.skipIf(process.getuid?.() !== 0)(
    'an unprivileged user (through a user namespace) builds the same toolchain, byte for byte',
    async () => {
      const cache = join(work, 'nobody-cache');
      const tree = join(cache, 'tree');
      await mkdir(cache, { recursive: true });
      await cp(tcPristine, tree, { recursive: true, verbatimSymlinks: true });
      await run('chown', ['-R', '65534:65534', cache], { cwd: '/' });
      await chmod(work, 0o755);
      const [cmd, args] = canonicalRootArgv(
        'userns',
        [{ host: tree, canonical: CANONICAL_TOOLCHAIN }],
        CANONICAL_TOOLCHAIN,
        'bash',
        ['build.sh', '-k', 'linux', '-j', '4', 'notests', 'solo5'],
      );
      await run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', cmd, ...args], {
        cwd: '/',
        // The recipe's own command env (HOST_CFLAGS=-fcommon for the NetBSD host tools) as buildToolchain gives it.
        env: { ...buildEnv({ base: process.env, command: toolchain.commands[0] }), HOME: cache },
        cleanEnv: true,
        logFile: join(work, 'logs', 'nobody.log'),
      });
      expect((await stat(join(tree, 'rump/lib/libc.a'))).uid).toBe(65534); // built by nobody
      expect(await treeDigest(join(tree, 'rump'))).toEqual(await treeDigest(join(canon[0].tc, 'rump')));
      await collectArtifacts(target('hello'), tree, join(cache, 'out'));
      expect(await treeDigest(join(cache, 'out'))).toEqual(await treeDigest(join(canon[0].out, 'hello')));
    },
  );

  it('cancelling a build in a canonical root stops every process of it', async () => {
    const tree = join(work, 'cancel', 'frankenlibc');
    await mkdir(join(tree, '..'), { recursive: true });
    await cp(tcPristine, tree, { recursive: true, verbatimSymlinks: true });
    // In the root every build's working directory is /mnt/nabla-build/toolchain, so the fixture's sleep marker
    // is not unique to this build: a unique environment value, inherited by every process of the build,
    // tells ours apart.
    const marker = `NABLA_TEST_CANCEL_MARKER=${Date.now()}-${process.pid}-${Math.random()}`;
    const sleeper = `nabla-fixture-sleep:${CANONICAL_TOOLCHAIN}:buildrump`;
    const ours = async () => new Set(await processesWithEnv(marker));
    const ac = new AbortController();
    const build = buildToolchain({
      baseEnv: process.env,
      recipe: toolchain,
      treeDir: tree,
      jobs: 2,
      logFile: join(work, 'logs', 'cancel.log'),
      signal: ac.signal,
      env: { NABLA_FIXTURE_SLEEP: 'buildrump:120', [marker.split('=')[0] as string]: marker.split('=')[1] as string },
      canonical: { toolchain: tree },
    }).catch((e: unknown) => e);
    await until(
      'the sleeping build step',
      async () => {
        const mine = await ours();
        return (await pgrep(sleeper)).some((p) => mine.has(p)) ? true : undefined;
      },
      60_000,
    );
    const seen = await ours();
    expect(seen.size).toBeGreaterThanOrEqual(3); // bash build.sh, sh -c, sleep
    const t0 = Date.now();
    ac.abort();
    const err = await build;
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as CancelledError).message).toMatch(/^building toolchain frankenlibc \(.*\): `bash` was stopped/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await until('no process of the build left', async () => ((await ours()).size === 0 ? true : undefined), 5_000);
    // Each process seen before the abort (the sleeper among them) is gone.
    // (A zombie waiting for init to reap it is not running: only its exit status is left.)
    const alive = async (pid: number) => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      return stat !== '' && !/^\d+ \(.*\) [ZX] /s.test(stat);
    };
    const left: number[] = [];
    for (const pid of seen) if (await alive(pid)) left.push(pid);
    expect(left).toEqual([]);
    expect((await pgrep(sleeper)).filter((p) => seen.has(p))).toEqual([]);
  });
});
