import { mkdtempSync } from 'node:fs';
import { access, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { machine, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError, run } from '@nabla-build/exec';
import {
  BuildError,
  CancelledError,
  type RecipeSet,
  type TargetRecipe,
  type ToolchainRecipe,
} from '@nabla-build/model';
import { loadRecipes } from '@nabla-build/recipes';
import { createFixtureUpstreams, type FixtureUpstreams, repositoryRoot } from '@nabla-build/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPackage, buildToolchain, collectArtifacts, hostFacts } from '../src/index.js';
import { checkoutFrankenlibc, checkoutPackages, pgrep, processesIn, tarballsFor, targetOf, until } from './helpers.js';

// Real builds against the fixture upstreams: the production recipes, plain-git checkouts, the host gcc.
let fx: FixtureUpstreams;
let work: string;
let recipes: RecipeSet;
let toolchain: ToolchainRecipe;
let tcTree: string;
let pkgTree: string;

const target = (name: string): TargetRecipe => targetOf(recipes, name);

async function exists(p: string): Promise<boolean> {
  return access(p).then(
    () => true,
    () => false,
  );
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nabla-toolchain-'));
  fx = await createFixtureUpstreams(join(work, 'upstreams'));
  recipes = loadRecipes(join(repositoryRoot(), 'recipes'));
  toolchain = recipes.toolchains.get('frankenlibc') as ToolchainRecipe;
  tcTree = join(work, 'frankenlibc');
  pkgTree = join(work, 'rumprun-packages');
  await checkoutFrankenlibc(fx, tcTree);
  await checkoutPackages(fx, pkgTree);
});

afterAll(async () => {
  await fx?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('buildToolchain (production recipe, fixture frankenlibc)', () => {
  it('builds, reports every phase in order, verifies the outputs, and ignores the caller’s CC/CFLAGS/MAKEFLAGS', async () => {
    // Each of these breaks the build if it leaks through: Solo5's configure.sh runs ${CC}; make would try a
    // jobserver whose file descriptors do not exist.
    const broken = { CC: '/bin/false', CFLAGS: '-DNABLA_BROKEN -m16', MAKEFLAGS: '-j64 --jobserver-auth=98,99' };
    const trace = join(work, 'build-trace');
    const phases: [string, number, number][] = [];
    let lines = 0;
    const r = await buildToolchain({
      baseEnv: { ...process.env, ...broken },
      recipe: toolchain,
      treeDir: tcTree,
      jobs: 2,
      logFile: join(work, 'logs', 'toolchain.log'),
      env: { NABLA_FIXTURE_TRACE: trace },
      onPhase: (p, i, n) => phases.push([p, i, n]),
      onLine: () => lines++,
    });
    expect(phases.map(([p]) => p)).toEqual(toolchain.phases.map((p) => p.phase));
    expect(phases.map(([, i]) => i)).toEqual(toolchain.phases.map((_, i) => i));
    expect(r.phases).toEqual(toolchain.phases.map((p) => p.phase));
    expect(r.outputs).toEqual(toolchain.outputs.map((o) => join(tcTree, o)));
    for (const o of r.outputs) expect(await exists(o)).toBe(true);
    expect(lines).toBeGreaterThan(50);
    // build.sh ran once, with -j from `jobs`.
    const runs = (await readFile(trace, 'utf8')).trim().split('\n');
    expect(runs).toHaveLength(1);
    expect(runs[0]).toContain('args=-k linux -j 2 notests solo5');
    const log = await readFile(join(work, 'logs', 'toolchain.log'), 'utf8');
    expect(log).toContain('$ bash build.sh -k linux -j 2 notests solo5');
    expect(log).toContain('+ cd solo5 && ./configure.sh && make -j 2');
    expect(log).toMatch(
      /environment \(allow list; everything else removed\): HOME .*\bLC_ALL NABLA_FIXTURE_TRACE PATH\b/,
    );
    expect(log).not.toMatch(/environment \(allow list.*\b(CC|MAKEFLAGS)\b/);
  });

  it('produced wrappers around the host compiler and a hello that runs, directly and under the tender', async () => {
    const gcc = (await run('sh', ['-c', 'command -v gcc'], { cwd: '/' })).stdout.trim();
    const wrapper = await readFile(join(tcTree, 'rump/bin/x86_64-rumprun-linux-gcc'), 'utf8');
    expect(wrapper).toContain(`exec ${gcc} -static -isystem ${tcTree}/rump/include`);
    for (const link of ['x86_64-rumprun-linux-cc', 'x86_64-rumprun-linux-c++', 'rumprun-cc', 'rumprun-c++']) {
      expect((await stat(join(tcTree, 'rump/bin', link))).isFile()).toBe(true);
    }
    const hello = join(tcTree, 'rumpobj/tests/hello');
    const direct = await run(hello, ['a', 'b c'], { cwd: work, env: { RUMP_VERBOSE: '1' } });
    expect(direct.stderr).toContain('I beheld the wretch — the miserable monster whom I had created.');
    expect(direct.stdout).toContain('argv[2]=b c');
    expect(direct.stdout).toContain('RUMP_VERBOSE=1');
    const tender = join(tcTree, 'solo5/tenders/spt/solo5-spt');
    // frankenlibc's hello embeds the manifest of platform/solo5/manifest.json (block rootfs, net tap): the tender
    // starts it only with both attached (the fixture tender checks that the interface exists: lo does).
    const disk = join(work, 'hello-rootfs.img');
    await writeFile(disk, Buffer.alloc(4096));
    const viaTender = await run(
      tender,
      ['--mem=64', '--net:tap=lo', `--block:rootfs=${disk}`, hello, 'RUMP_VERBOSE=1', '--', 'x'],
      {
        cwd: work,
        cleanEnv: true,
      },
    );
    expect(viaTender.stdout).toContain('argv[0]=solo5');
    expect(viaTender.stdout).toContain('argv[1]=x');
    expect(viaTender.stdout).toContain('RUMP_VERBOSE=1');
    const solo5Hello = await run(tender, [join(tcTree, 'solo5/tests/test_hello/test_hello.spt')], { cwd: work });
    expect(solo5Hello.stdout).toContain('Hello, World');
  });

  it('reports a missing output with the recipe, the path and the log', async () => {
    const recipe: ToolchainRecipe = {
      ...toolchain,
      commands: [{ argv: ['true'], cwd: '.', env: {}, unset: [] }],
      outputs: ['rump', 'rump/bin/x86_64-rumprun-linux-gfortran'],
    };
    const logFile = join(work, 'logs', 'missing-output.log');
    const err = await buildToolchain({ recipe, treeDir: tcTree, jobs: 1, logFile, baseEnv: process.env }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BuildError);
    const e = err as BuildError;
    expect(e.code).toBe('toolchain.output-missing');
    expect(e.message).toContain('rump/bin/x86_64-rumprun-linux-gfortran');
    expect(e.message).toContain(join(tcTree, 'rump/bin/x86_64-rumprun-linux-gfortran'));
    expect(e.message).toContain(toolchain.file);
    expect(e.logPath).toBe(logFile);
  });
});

describe('buildToolchain failures and cancellation', () => {
  let tree: string;
  beforeAll(async () => {
    tree = join(work, 'frankenlibc-2');
    await checkoutFrankenlibc(fx, tree);
  });

  it('a failing build carries the recipe hint for its log tail, the log path and the tail', async () => {
    const logFile = join(work, 'logs', 'fail-buildrump.log');
    const err = await buildToolchain({
      baseEnv: process.env,
      recipe: toolchain,
      treeDir: tree,
      jobs: 2,
      logFile,
      env: { NABLA_FIXTURE_FAIL: 'buildrump' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    const e = err as CommandError;
    expect(e.message).toMatch(
      /^building toolchain frankenlibc \(.*frankenlibc\.yaml\): `bash build\.sh -k linux -j 2 notests solo5` exited with code 1/,
    );
    expect(e.hint).toBe(toolchain.hints.find((h) => h.match.includes('mawk'))?.hint);
    expect(e.logPath).toBe(logFile);
    expect(e.tail).toContain('mawk is not supported.');
    expect(await readFile(logFile, 'utf8')).toContain('mawk is not supported.');
  });

  it('a failure no recipe hint knows has no hint, but still its tail', async () => {
    const err = (await buildToolchain({
      baseEnv: process.env,
      recipe: toolchain,
      treeDir: tree,
      jobs: 2,
      logFile: join(work, 'logs', 'fail-musl.log'),
      env: { NABLA_FIXTURE_FAIL: 'musl' },
    }).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.hint).toBeUndefined();
    expect(err.tail.join('\n')).toContain("error: redefinition of '__stack_chk_fail'");
  });

  it('without the project Solo5 patches the host gcc is rejected, and the hint points at the GCC patch', async () => {
    const unpatched = join(work, 'frankenlibc-unpatched');
    await checkoutFrankenlibc(fx, unpatched, { projectPatches: false });
    const err = (await buildToolchain({
      baseEnv: process.env,
      recipe: toolchain,
      treeDir: unpatched,
      jobs: 2,
      logFile: join(work, 'logs', 'unpatched.log'),
    }).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.tail.join('\n')).toContain("Only 'gcc' 4.x+ is supported on Linux");
    expect(err.hint).toContain('GCC >= 10');
  });

  it('cancellation stops the whole process tree', async () => {
    const marker = `nabla-fixture-sleep:${tree}`;
    const ac = new AbortController();
    const phases: string[] = [];
    const build = buildToolchain({
      baseEnv: process.env,
      recipe: toolchain,
      treeDir: tree,
      jobs: 2,
      logFile: join(work, 'logs', 'cancel.log'),
      signal: ac.signal,
      env: { NABLA_FIXTURE_SLEEP: 'buildrump:120' },
      onPhase: (p) => phases.push(p),
    }).catch((e: unknown) => e);
    await until('the sleeping build step', async () => ((await pgrep(marker)).length > 0 ? true : undefined), 30_000);
    expect((await processesIn(tree)).length).toBeGreaterThanOrEqual(3); // bash build.sh, sh -c, sleep
    const t0 = Date.now();
    ac.abort();
    const err = await build;
    expect(err).toBeInstanceOf(CancelledError);
    expect((err as CancelledError).message).toMatch(/^building toolchain frankenlibc \(.*\): `bash` was stopped/);
    expect(Date.now() - t0).toBeLessThan(5_000);
    await until(
      'no process left in the tree',
      async () => ((await processesIn(tree)).length === 0 ? true : undefined),
      5_000,
    );
    expect(await pgrep(marker)).toEqual([]);
    expect(phases).toEqual(toolchain.phases.slice(0, 2).map((p) => p.phase));
  });
});

describe('buildPackage and collectArtifacts (production recipes, fixture rumprun-packages)', () => {
  const out = (name: string) => join(work, 'out', name);

  it('python3: config.mk, tarballs in place, no -j, a working interpreter and its library', async () => {
    const t = target('python3');
    const logFile = join(work, 'logs', 'python3.log');
    const r = await buildPackage({
      baseEnv: process.env,
      target: t,
      treeDir: pkgTree,
      toolchainDir: tcTree,
      binDir: 'rump/bin',
      tarballs: tarballsFor(fx, t),
      jobs: 8,
      logFile,
    });
    expect(await readFile(join(pkgTree, 'config.mk'), 'utf8')).toMatch(
      /^RUMPRUN_TOOLCHAIN_TUPLE=x86_64-rumprun-linux$/m,
    );
    expect(r.placed).toEqual(
      [
        'python3/dl/Python-3.5.2.tar.xz',
        'libressl/dl/libressl-2.4.2.tar.gz',
        'sqlite/dl/sqlite-autoconf-3090200.tar.gz',
        'zlib/dl/zlib-1.2.11.tar.gz',
      ].map((p) => join(pkgTree, p)),
    );
    const log = await readFile(logFile, 'utf8');
    for (const c of ['make -C libressl', 'make -C sqlite', 'make -C zlib', 'make -C python3 build/python'])
      expect(log).toContain(`$ ${c}  (in ${pkgTree})`);
    expect(log).not.toMatch(/^\$ make .*-j/m);
    expect(log).not.toContain('network download attempted');
    const arts = await collectArtifacts(t, pkgTree, out('python3'));
    expect(arts.map((a) => [a.to, a.kind])).toEqual([
      ['python3.nabla', 'file'],
      ['python3.5', 'directory'],
    ]);
    expect(arts[1]?.files).toBeGreaterThan(300);
    expect(((await stat(join(out('python3'), 'python3.nabla'))).mode & 0o777).toString(8)).toBe('755');
    const py = await run(join(out('python3'), 'python3.nabla'), ['-c', "print('hello')"], {
      cwd: work,
      env: { PYTHONHOME: '/usr/local' },
    });
    expect(py.stdout).toBe('hello\n');
    expect(py.stderr).toContain('PYTHONHOME=/usr/local');
    expect(py.stderr).toContain('on lkl');
  });

  it('nginx: the server binary and its data tree', async () => {
    const t = target('nginx');
    await buildPackage({
      baseEnv: process.env,
      target: t,
      treeDir: pkgTree,
      toolchainDir: tcTree,
      binDir: 'rump/bin',
      tarballs: tarballsFor(fx, t),
      jobs: 2,
      logFile: join(work, 'logs', 'nginx.log'),
    });
    await collectArtifacts(t, pkgTree, out('nginx'));
    expect((await readdir(join(out('nginx'), 'data'))).sort()).toEqual(['conf', 'etc', 'tmp', 'www']);
    expect(await readFile(join(out('nginx'), 'data/conf/nginx.conf'), 'utf8')).toContain('daemon off;');
    const r = await run(join(out('nginx'), 'nginx.nabla'), [], { cwd: work });
    expect(r.stderr).toContain('configuration file /conf/nginx.conf');
  });

  it('redis: an inherited ARCH breaks its build unless the recipe unsets it (as redis.yaml does)', async () => {
    const t = target('redis');
    expect(t.build.commands[0]?.unset).toContain('ARCH');
    const trap: TargetRecipe = {
      ...t,
      build: { ...t.build, commands: t.build.commands.map((c) => ({ ...c, unset: [] })) },
    };
    const err = (await buildPackage({
      baseEnv: process.env,
      target: trap,
      treeDir: pkgTree,
      toolchainDir: tcTree,
      binDir: 'rump/bin',
      tarballs: tarballsFor(fx, t),
      jobs: 2,
      logFile: join(work, 'logs', 'redis-arch.log'),
      env: { ARCH: 'amd64' },
    }).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.message).toMatch(
      /^building redis \(.*redis\.yaml\): `make -C redis bin\/redis-server` exited with code 2/,
    );
    expect(err.tail.join('\n')).toContain('amd64');
    expect(err.logPath).toBe(join(work, 'logs', 'redis-arch.log'));

    await buildPackage({
      baseEnv: process.env,
      target: t,
      treeDir: pkgTree,
      toolchainDir: tcTree,
      binDir: 'rump/bin',
      tarballs: tarballsFor(fx, t),
      jobs: 2,
      logFile: join(work, 'logs', 'redis.log'),
      env: { ARCH: 'amd64' },
    });
    await collectArtifacts(t, pkgTree, out('redis'));
    expect((await readdir(join(out('redis'), 'data/conf'))).sort()).toEqual(['redis.conf', 'redisaof.conf']);
    const r = await run(join(out('redis'), 'redis.nabla'), ['/conf/redis.conf'], { cwd: work });
    expect(r.stderr).toContain('config /conf/redis.conf');
  });

  it('node: a C++ program linked with the toolchain’s libc++', async () => {
    const t = target('node');
    await buildPackage({
      baseEnv: process.env,
      target: t,
      treeDir: pkgTree,
      toolchainDir: tcTree,
      binDir: 'rump/bin',
      tarballs: tarballsFor(fx, t),
      jobs: 2,
      logFile: join(work, 'logs', 'node.log'),
    });
    await collectArtifacts(t, pkgTree, out('node'));
    const r = await run(join(out('node'), 'node.nabla'), ['-e', "console.log('hello')"], { cwd: work });
    expect(r.stdout).toBe('hello\n');
    expect(r.stderr).toContain('libc++ 8.0.0 (fixture)');
  });

  it('hello, nabla-run and solo5-hello come straight from the toolchain tree', async () => {
    for (const name of ['hello', 'nabla-run', 'solo5-hello']) {
      const t = target(name);
      expect(t.build.tree).toBe('toolchain');
      const r = await buildPackage({
        baseEnv: process.env,
        target: t,
        treeDir: tcTree,
        toolchainDir: tcTree,
        binDir: 'rump/bin',
        tarballs: [],
        jobs: 2,
        logFile: join(work, 'logs', `${name}.log`),
      });
      expect(r.configMk).toBeUndefined();
      await collectArtifacts(t, tcTree, out(name));
    }
    const hello = await run(join(out('hello'), 'hello.nabla'), [], { cwd: work });
    expect(hello.stderr).toContain('I beheld the wretch');
    const s = await run(
      join(out('nabla-run'), 'nabla-run'),
      ['--mem=32', join(out('solo5-hello'), 'solo5-hello.nabla')],
      { cwd: work },
    );
    expect(s.stdout).toContain('Hello, World');
  });

  it('a tarball that was not put in place makes the Makefile try to download: the error says so', async () => {
    const tree = join(work, 'rumprun-packages-2');
    await checkoutPackages(fx, tree);
    const t = target('nginx');
    const err = (await buildPackage({
      baseEnv: process.env,
      target: t,
      treeDir: tree,
      toolchainDir: tcTree,
      binDir: 'rump/bin',
      tarballs: tarballsFor(fx, t).filter((x) => x.name !== 'pcre'),
      jobs: 2,
      logFile: join(work, 'logs', 'no-pcre.log'),
    }).catch((e: unknown) => e)) as CommandError;
    expect(err).toBeInstanceOf(CommandError);
    expect(err.tail.join('\n')).toContain(
      'fixture: network download attempted for URL https://ftp.pcre.org/pub/pcre/pcre-8.40.tar.gz',
    );
    expect(err.hint).toContain('tried to download');
    expect(err.hint).toContain(t.file);
  });

  it('a missing toolchain is reported before make runs', async () => {
    const t = target('redis');
    const err = (await buildPackage({
      baseEnv: process.env,
      target: t,
      treeDir: pkgTree,
      toolchainDir: join(work, 'nope'),
      binDir: 'rump/bin',
      tarballs: tarballsFor(fx, t),
      jobs: 2,
      logFile: join(work, 'logs', 'x.log'),
    }).catch((e: unknown) => e)) as BuildError;
    expect(err).toBeInstanceOf(BuildError);
    expect(err.message).toContain(join(work, 'nope', 'rump', 'bin'));
  });
});

describe('hostFacts', () => {
  it('reports the machine and the first line of cc --version', async () => {
    const f = await hostFacts();
    expect(f.arch).toBe(machine());
    const first = (await run('cc', ['--version'], { cwd: '/', env: { LC_ALL: 'C' } })).stdout.split('\n')[0];
    expect(f.cc).toBe(first);
    expect(await hostFacts()).toBe(f);
  });
});
