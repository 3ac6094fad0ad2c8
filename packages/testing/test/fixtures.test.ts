import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { lstat, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError, run } from '@nabla-build/exec';
import type { GitSourceSpec, TarballSourceSpec } from '@nabla-build/model';
import { loadConfig, loadRecipes } from '@nabla-build/recipes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createFixtureUpstreams,
  fixtureGit as git,
  fixtureTarball,
  type FixtureUpstreams,
  gitCommit,
  gitRepo,
  HEREDOC_END,
  PATCH_LINE,
  ReconstructError,
  reconstructOriginals,
  renderReconstructed,
  repositoryRoot,
  unifiedDiff,
} from '../src/index.js';

const patch = async (cwd: string, file: string, extra: string[] = []) =>
  run('patch', ['-p1', '-F0', ...extra], { cwd, input: await readFile(file) });
const fails = async (p: Promise<unknown>): Promise<CommandError> => {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(CommandError);
  return e as CommandError;
};
const output = (e: CommandError) => e.tail.join('\n');

let work: string;
let fx: FixtureUpstreams;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nabla-fixtures-'));
  fx = await createFixtureUpstreams(join(work, 'a'));
});

afterAll(async () => {
  await fx?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('createFixtureUpstreams', () => {
  it('is fast and deterministic: the same commits and tarballs every time', async () => {
    expect(fx.createdInMs).toBeLessThan(10_000);
    const again = await createFixtureUpstreams(join(work, 'b'));
    try {
      for (const name of Object.keys(fx.repos) as (keyof typeof fx.repos)[]) {
        expect(again.repos[name].rev, name).toBe(fx.repos[name].rev);
        expect(again.repos[name].commits, name).toEqual(fx.repos[name].commits);
      }
      for (const name of Object.keys(fx.tarballs) as (keyof typeof fx.tarballs)[])
        expect(again.tarballs[name].sha256, name).toBe(fx.tarballs[name].sha256);
    } finally {
      await again.close();
    }
  });

  it('writes a valid nabla-build config that reaches every source of recipes/sources.yaml', async () => {
    const config = loadConfig(fx.configFile);
    expect(config.allowLocal).toBe(true);
    const recipes = loadRecipes(join(repositoryRoot(), 'recipes'));
    const sources = new Map<string, GitSourceSpec | TarballSourceSpec>();
    for (const r of [...recipes.toolchains.values(), ...recipes.targets.values()])
      for (const s of r.sources) sources.set(s.name, s);
    // What nabla-build does with a URL: the user rule with the longest prefix; else git:// → https:// first.
    const mirror = (url: string): string => {
      const u = url.startsWith('git://github.com/') ? `https://github.com/${url.slice(17)}` : url;
      const rule = config.mirrors
        .filter((m) => u.startsWith(m.prefix))
        .sort((a, b) => b.prefix.length - a.prefix.length)[0];
      expect(rule, url).toBeDefined();
      return `${rule?.replacement}${u.slice(rule?.prefix.length ?? 0)}`;
    };
    const gitmodules = (await git(fx.repos.frankenlibc.dir, ['show', `${fx.repos.frankenlibc.rev}:.gitmodules`]))
      .stdout;
    for (const s of sources.values()) {
      if (s.kind === 'tarball') {
        const t = fx.tarballs[s.name as keyof typeof fx.tarballs];
        expect(t, s.name).toBeDefined();
        expect(t.file).toBe(s.file);
        expect(t.placeIn).toBe(s.placeIn);
        expect(config.overrides[s.name]).toEqual({ url: t.url, sha256: t.sha256 });
        continue;
      }
      expect(config.overrides[s.name]?.rev).toBe(Object.values(fx.repos).find((r) => r.canonicalUrl === s.git)?.rev);
      expect(mirror(s.git)).toMatch(/^file:\/\//);
      await git('/', ['ls-remote', '--exit-code', mirror(s.git), 'HEAD']);
      for (const sub of s.submodules) {
        const repo = Object.values(fx.repos).find((r) => r.canonicalUrl === sub.git);
        expect(repo, sub.git).toBeDefined();
        expect(config.overrides[`${s.name}/${sub.path}`]?.rev).toBe(repo?.rev);
        // The superproject's gitlink pins the same commit, and .gitmodules' git:// URL reaches the same repository.
        const ls = (await git(fx.repos.frankenlibc.dir, ['ls-tree', fx.repos.frankenlibc.rev, sub.path])).stdout;
        expect(ls).toContain(`160000 commit ${repo?.rev}\t${sub.path}`);
        const url =
          new RegExp(`\\[submodule "${sub.path}"\\]\\n\\tpath = ${sub.path}\\n\\turl = (git://github\\.com/\\S+)`).exec(
            gitmodules,
          )?.[1] ?? '';
        expect(url).toMatch(/^git:\/\//);
        expect(mirror(url)).toBe(mirror(sub.git));
      }
    }
  });

  it('serves the tarballs over HTTP on 127.0.0.1, counting requests', async () => {
    const t = fx.tarballs.python;
    expect(t.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/Python-3\.5\.2\.tar\.xz$/);
    const before = fx.server.requests;
    const res = await fetch(t.url);
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(createHash('sha256').update(body).digest('hex')).toBe(t.sha256);
    expect(body.subarray(0, 6)).toEqual(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])); // xz magic
    expect((await fetch(`${fx.server.url}/nope.tar.gz`)).status).toBe(404);
    fx.server.fail('/zlib-1.2.11.tar.gz', 503);
    expect((await fetch(fx.tarballs.zlib.url)).status).toBe(503);
    fx.server.serve('/zlib-1.2.11.tar.gz', fx.tarballs.zlib.path);
    expect(fx.server.requests).toBe(before + 3);
    expect(fx.server.requestsFor('/Python-3.5.2.tar.xz')).toBeGreaterThanOrEqual(1);
    expect(fx.server.log.slice(-3)).toEqual([
      'GET /Python-3.5.2.tar.xz 200',
      'GET /nope.tar.gz 404',
      'GET /zlib-1.2.11.tar.gz 503',
    ]);
  });

  it('bare repositories serve any commit and partial clones; a sparse llvm clone fetches far less than a full one', async () => {
    const old = fx.repos.llvm.commits[5] as string;
    const empty = join(work, 'fetch-one');
    await git('/', ['init', '-q', empty]);
    await git(empty, ['fetch', '-q', '--depth', '1', fx.repos.llvm.url, old]);
    expect((await git(empty, ['rev-parse', 'FETCH_HEAD'])).stdout.trim()).toBe(old);
    expect(fx.repos.llvm.commits.length).toBeGreaterThanOrEqual(300);
    expect(fx.repos.llvm.tags['llvmorg-8.0.0']).toBe(fx.repos.llvm.rev);

    const full = join(work, 'llvm-full');
    await git('/', ['clone', '-q', '--bare', '--no-local', fx.repos.llvm.url, full]);
    const sparse = join(work, 'llvm-sparse');
    await git('/', ['clone', '-q', '--no-local', '--filter=blob:none', '--no-checkout', fx.repos.llvm.url, sparse]);
    await git(sparse, [
      'sparse-checkout',
      'set',
      '--cone',
      'libcxx',
      'libcxxabi',
      'libunwind',
      'llvm/cmake',
      'llvm/utils',
    ]);
    await git(sparse, ['checkout', '-q', fx.repos.llvm.rev]);
    const size = async (dir: string) => Number((await run('du', ['-sb', dir], { cwd: '/' })).stdout.split('\t')[0]);
    const fullBytes = await size(join(full, 'objects'));
    const sparseBytes = await size(join(sparse, '.git', 'objects'));
    expect(fullBytes).toBeGreaterThan(3_000_000);
    expect(sparseBytes * 4).toBeLessThan(fullBytes);
    for (const p of [
      'libcxx/src/fixture_libcxx.cpp',
      'libcxxabi/CMakeLists.txt',
      'libunwind/src/unwind_fixture.c',
      'llvm/cmake/modules/LLVMConfig.cmake',
      'llvm/utils/lit/lit.py',
    ])
      await stat(join(sparse, p));
    await expect(stat(join(sparse, 'clang'))).rejects.toThrow();
  });
});

describe('fixture Solo5', () => {
  it('builds only in a full clone: a submodule checkout fails in gen_version_h.sh like Solo5 0.6', async () => {
    const clone = join(work, 'solo5-full');
    await git('/', ['clone', '-q', fx.repos.solo5.url, clone]);
    expect((await git(clone, ['describe', '--tags'])).stdout.trim()).toBe(
      `v0.6.4-2-g${fx.repos.solo5.rev.slice(0, 7)}`,
    );
    for (const p of fx.projectPatches) await patch(clone, p);
    await run('./configure.sh', [], { cwd: clone });
    await run('make', ['-j2'], { cwd: clone });
    for (const f of [
      'tenders/spt/solo5-spt',
      'tests/test_hello/test_hello.spt',
      'bindings/spt/solo5_spt.o',
      'elftool/solo5-elftool',
    ])
      expect((await stat(join(clone, f))).isFile()).toBe(true);
    expect(await readFile(join(clone, 'include/solo5/solo5_version.h'), 'utf8')).toContain(
      `v0.6.4-2-g${fx.repos.solo5.rev.slice(0, 7)}-dirty`,
    );
    expect(await readFile(join(clone, 'Makeconf'), 'utf8')).toMatch(/^CONFIG_GUEST_PAGE_SIZE=0x1000$/m);
    const hello = await run(
      join(clone, 'tenders/spt/solo5-spt'),
      ['--mem=32', join(clone, 'tests/test_hello/test_hello.spt')],
      { cwd: clone },
    );
    expect(hello.stdout).toContain('Hello, World');

    const superproject = join(work, 'franken-submodules');
    await git('/', ['clone', '-q', fx.repos.frankenlibc.url, superproject]);
    await git(superproject, ['config', 'submodule.solo5.url', fx.repos.solo5.url]);
    await git(superproject, ['submodule', 'update', '--init', '-q', 'solo5']);
    const sub = join(superproject, 'solo5');
    expect((await lstat(join(sub, '.git'))).isFile()).toBe(true);
    for (const p of fx.projectPatches) await patch(sub, p);
    await run('./configure.sh', [], { cwd: sub });
    const e = await fails(run('make', [], { cwd: sub }));
    expect(output(e)).toContain('include/solo5/solo5_version.h.distrib: Not found, and we are not in a Git tree');
  });

  it('carries the exact lines of the project patches, which apply without fuzz or offset and are each needed', async () => {
    expect(fx.projectPatches.length).toBeGreaterThanOrEqual(3);
    const texts = await Promise.all(fx.projectPatches.map(async (p) => ({ p, t: await readFile(p, 'utf8') })));
    const gccPatch = texts.find((x) => x.t.includes('__GNUC__'))?.p;
    const genodePatch = texts.find((x) => x.t.includes('CONFIG_GENODE'))?.p;
    const zeropagePatch = texts.find((x) => x.t.includes('test_zeropage'))?.p;
    expect([gccPatch, genodePatch, zeropagePatch].every(Boolean)).toBe(true);
    const fresh = async (name: string) => {
      const d = join(work, name);
      await git('/', ['clone', '-q', fx.repos.solo5.url, d]);
      return d;
    };

    // Unpatched: the host gcc (>= 10) is refused.
    const plain = await fresh('solo5-plain');
    expect(output(await fails(run('./configure.sh', [], { cwd: plain })))).toContain(
      "Only 'gcc' 4.x+ is supported on Linux",
    );
    // Every patch applies at its exact position (no "offset", no "fuzz").
    for (const p of fx.projectPatches) {
      const r = await patch(plain, p, ['--dry-run']);
      expect(r.stdout).not.toMatch(/offset|fuzz/i);
    }

    // GCC check only: Genode is still configured and does not link with this binutils.
    const gccOnly = await fresh('solo5-gcc-only');
    await patch(gccOnly, gccPatch as string);
    await run('./configure.sh', [], { cwd: gccOnly });
    expect(await readFile(join(gccOnly, 'Makeconf'), 'utf8')).toMatch(/^CONFIG_GENODE=1$/m);
    expect(output(await fails(run('make', ['-j2'], { cwd: gccOnly })))).toContain(
      'PHDR segment not covered by LOAD segment',
    );

    // GCC check and Genode: test_zeropage stops the build under -Werror=array-bounds.
    const noZeropage = await fresh('solo5-no-zeropage');
    await patch(noZeropage, gccPatch as string);
    await patch(noZeropage, genodePatch as string);
    await run('./configure.sh', [], { cwd: noZeropage });
    expect(await readFile(join(noZeropage, 'Makeconf'), 'utf8')).toMatch(/^CONFIG_GENODE=$/m);
    expect(output(await fails(run('make', ['-j2'], { cwd: noZeropage })))).toContain('-Werror=array-bounds');
  });

  it('configure.sh keeps the reconstructed lines at their line numbers, inside a here-document it reads', async () => {
    const configure = (await git(fx.repos.solo5.dir, ['show', `${fx.repos.solo5.rev}:configure.sh`])).stdout.split(
      '\n',
    );
    expect(configure[1]).toBe(`: <<'${HEREDOC_END}'`);
    for (const { t } of await Promise.all(fx.projectPatches.map(async (p) => ({ t: await readFile(p, 'utf8') })))) {
      const m = /^@@ -(\d+),\d+ [^\n]*\n((?:[ -][^\n]*\n)+)/m.exec(t.split('+++ b/configure.sh')[1] ?? '');
      if (!m) continue;
      const first = m[2]?.split('\n')[0]?.slice(1);
      expect(configure[Number(m[1]) - 1]).toBe(first);
    }
  });
});

describe('fixture frankenlibc and rumprun-packages', () => {
  it('ships patches/solo5 whose three patches each modify a different submodule tree', async () => {
    const list = (
      await git(fx.repos.frankenlibc.dir, ['ls-tree', '--name-only', `${fx.repos.frankenlibc.rev}:patches/solo5`])
    ).stdout
      .trim()
      .split('\n');
    expect(list).toEqual([
      '0001-solo5-elf-segment-align-workaround.patch',
      '0002-musl-stack-chk-fail.patch',
      '0003-linux-task-stack-size.patch',
    ]);
    const targets = await Promise.all(
      list.map(
        async (f) =>
          /^\+\+\+ b\/(\S+)/m.exec(
            (await git(fx.repos.frankenlibc.dir, ['show', `${fx.repos.frankenlibc.rev}:patches/solo5/${f}`])).stdout,
          )?.[1],
      ),
    );
    expect(targets).toEqual([
      'solo5/tenders/common/elf.c',
      'musl/src/env/__stack_chk_fail.c',
      'linux/arch/lkl/kernel/threads.c',
    ]);
  });

  it('build.sh parses options like upstream: only before the positional words, -k defaulting to netbsd', async () => {
    const tree = join(work, 'franken-grammar');
    await git('/', ['clone', '-q', fx.repos.frankenlibc.url, tree]);
    const trace = join(work, 'grammar-trace');
    const e1 = await fails(
      run('bash', ['build.sh', 'notests', '-k', 'linux', 'solo5'], { cwd: tree, env: { NABLA_FIXTURE_TRACE: trace } }),
    );
    expect(output(e1)).toContain('pass -k linux');
    const e2 = await fails(run('bash', ['build.sh', 'notests', 'solo5'], { cwd: tree }));
    expect(output(e2)).toContain('-k netbsd, the default');
    const help = await run('bash', ['build.sh', '-h'], { cwd: tree });
    expect(help.stdout).toContain('-k: type of rump kernel');
    expect((await readFile(trace, 'utf8')).trim().split('\n')).toHaveLength(1);
  });

  it('rumprun-packages enforces config.mk and never downloads', async () => {
    const tree = join(work, 'rpkg');
    await git('/', ['clone', '-q', fx.repos['rumprun-packages'].url, tree]);
    expect(fx.repos['rumprun-packages'].branch).toBe('lkl-nabla');
    const e1 = await fails(run('make', ['-C', 'python3', 'build/python'], { cwd: tree }));
    expect(output(e1)).toContain('Please set RUMPRUN_TOOLCHAIN_TUPLE in the top-level config.mk');
    await writeFile(join(tree, 'config.mk'), 'RUMPRUN_TOOLCHAIN_TUPLE=x86_64-rumprun-linux\n');
    const e2 = await fails(run('make', ['-C', 'python3', 'build/python'], { cwd: tree }));
    expect(output(e2)).toContain(
      'fixture: network download attempted for URL https://www.python.org/ftp/python/3.5.2/Python-3.5.2.tar.xz',
    );
    expect(fx.server.requestsFor('/Python-3.5.2.tar.xz')).toBeLessThanOrEqual(1);
  });
});

describe('fixture runnc', () => {
  it('is a GOPATH-mode Go program whose templates take every project patch exactly, and only then act as patched', async () => {
    expect(new Set(fx.runncPatches.map((p) => p.split('/').slice(-2)[0]))).toEqual(new Set(['runnc']));
    expect(fx.runncPatches.length).toBeGreaterThanOrEqual(5);
    const tree = join(work, 'runnc');
    await git('/', ['clone', '-q', fx.repos.runnc.url, tree]);
    expect(fx.repos.runnc.branch).toBe('lkl-musl');
    const mod = await readFile(join(tree, 'go.mod'), 'utf8');
    expect(mod).toMatch(/^module github\.com\/retrage\/runnc$/m);
    expect(mod).not.toMatch(/^require/m);
    // Like upstream it pins Solo5 as a submodule (which nabla-build does not fetch): the toolchain's Solo5 pin.
    expect((await git(tree, ['ls-tree', 'HEAD', 'solo5'])).stdout).toContain(`160000 commit ${fx.repos.solo5.rev}`);
    const read = (p: string) => readFile(join(tree, p), 'utf8');
    const storage = 'nabla-lib/storage/storage_linux.go';
    const handler = 'llruntimes/nabla/exec_handler.go';
    const cli = 'llcli/llcli.go';
    const signals = 'llcli/util_signal.go';
    const launch = 'llruntimes/nabla/runnc-cont/runnc_cont.go';
    // Unpatched: runnc 0fc3e2b's behaviour, no placeholder left.
    for (const f of [storage, handler, cli, signals, launch]) expect(await read(f)).not.toContain(PATCH_LINE);
    expect(await read(launch)).toContain('args = append(args, r.NablaRunArgs...)');
    expect(await read(storage)).toContain('"virt-make-fs"');
    expect(await read(handler)).toContain('NablaRunBin = NablaBinDir + "nabla-run"');
    expect(await read(cli)).not.toContain('systemd-cgroup');
    expect(await read(signals)).toContain('status: utils.ExitStatus(ws),');
    for (const p of fx.runncPatches) expect((await patch(tree, p)).stdout).not.toMatch(/offset|fuzz/i);
    expect(await read(storage)).toContain('exec.Command("mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0",');
    expect(await read(storage)).not.toContain('"virt-make-fs"');
    expect(await read(handler)).toContain('NablaRunBin = nablaRunBin()');
    expect(await read(cli)).toContain('Name:  "systemd-cgroup"');
    expect(await read(signals)).toContain('status: utils.ExitStatus(unix.WaitStatus(ws)),');
    expect(await read(launch)).toContain('args = append(args, guestWord(a))');
  });
});

describe('reconstructOriginals', () => {
  const original = Array.from({ length: 40 }, (_, i) => `line ${i + 1}`)
    .join('\n')
    .concat('\n');

  it('maps a later patch back through an earlier one that moved lines', async () => {
    const step1 = original.replace('line 5\n', 'line 5\ninserted a\ninserted b\n');
    const step2 = step1.replace('line 30\n', 'line thirty\n');
    const series = [
      { name: '0001', text: unifiedDiff('f.sh', original, step1) },
      { name: '0002', text: unifiedDiff('f.sh', step1, step2) },
    ];
    const lines = reconstructOriginals(series).get('f.sh') as (string | undefined)[];
    expect(lines).toHaveLength(33);
    expect(lines[1]).toBeUndefined();
    for (const n of [3, 4, 5, 6, 7, 8, 27, 28, 29, 30, 31, 32, 33]) expect(lines[n - 1]).toBe(`line ${n}`);
    // The rebuilt file takes the series with exact context.
    const dir = mkdtempSync(join(work, 'recon-'));
    await writeFile(join(dir, 'f.sh'), renderReconstructed('f.mk', lines));
    for (const [i, s] of series.entries()) {
      await writeFile(join(dir, `${i}.patch`), s.text);
      const r = await patch(dir, join(dir, `${i}.patch`));
      expect(r.stdout).not.toMatch(/offset|fuzz/i);
    }
    expect(await readFile(join(dir, 'f.sh'), 'utf8')).toContain('inserted b\nline 6');
  });

  it('fills a Go template at its placeholders and rejects one that drifted from the series', () => {
    const go = ['package x', '', 'func f() int {', '\treturn 1', '}', ''].join('\n');
    const series = [{ name: '0001', text: unifiedDiff('x.go', go, go.replace('return 1', 'return 2')) }];
    const lines = reconstructOriginals(series).get('x.go') as (string | undefined)[];
    const template = (at: number[]) =>
      Array.from({ length: 5 }, (_, i) => (at.includes(i + 1) ? PATCH_LINE : `// own ${i + 1}`))
        .join('\n')
        .concat('\n');
    const read = lines.flatMap((l, i) => (l === undefined ? [] : [i + 1]));
    const merged = renderReconstructed('x.go', lines, template(read));
    expect(merged.split('\n')[3]).toBe('\treturn 1');
    expect(merged).not.toContain(PATCH_LINE);
    expect(() => renderReconstructed('x.go', lines, template(read.slice(1)))).toThrow(ReconstructError);
    expect(() => renderReconstructed('x.go', lines, template([...read, 5].filter((n) => n !== read[0])))).toThrow(
      /read by the patch series|reads no line there/,
    );
  });

  it('rejects a series that contradicts itself', () => {
    const a = unifiedDiff('f', original, original.replace('line 10\n', 'line ten\n'));
    const b = unifiedDiff(
      'f',
      original.replace('line 12\n', 'LINE 12\n'),
      original.replace('line 12\n', 'line twelve\n'),
    );
    expect(() =>
      reconstructOriginals([
        { name: 'a', text: a },
        { name: 'b', text: b.replace('-LINE 12', '-line 11') },
      ]),
    ).toThrow(ReconstructError);
  });

  it('renders shell scripts with the lines inside a here-document and the fixture script after it', () => {
    const text = renderReconstructed('configure.sh', [undefined, undefined, 'x()', '{', '}'], '#!/bin/sh\necho real\n');
    expect(text.split('\n')).toEqual([
      '#!/bin/sh',
      `: <<'${HEREDOC_END}'`,
      'x()',
      '{',
      '}',
      HEREDOC_END,
      'echo real',
      '',
    ]);
    expect(() => renderReconstructed('configure.sh', [undefined, 'needed'], '#!/bin/sh\n')).toThrow(ReconstructError);
  });
});

describe('gitRepo, gitCommit and fixtureTarball', () => {
  it('gitRepo makes deterministic history with modes, symlinks, gitlinks and tags', async () => {
    const files = {
      'a.txt': 'hello\n',
      'bin/run': '#!/bin/sh\necho run\n',
      'data.bin': new Uint8Array([0, 1, 2, 255]),
      link: { symlink: 'a.txt' },
      sub: { gitlink: fx.repos.musl.rev },
    };
    const one = await gitRepo(join(work, 'g1'), files, { tag: 'v1' });
    const two = await gitRepo(join(work, 'g2'), files, { bare: true, tag: 'v1' });
    expect(one.head).toBe(two.head);
    expect(one.tags.v1).toBe(one.head);
    expect((await stat(join(one.dir, 'bin/run'))).mode & 0o111).not.toBe(0);
    expect(await readlink(join(one.dir, 'link'))).toBe('a.txt');
    expect((await git(one.dir, ['ls-tree', 'HEAD', 'sub'])).stdout).toContain(`160000 commit ${fx.repos.musl.rev}`);
    const c = await gitCommit(one, { 'a.txt': 'bye\n', 'bin/run': null }, 'second', { tag: 'v2' });
    expect(one.commits).toHaveLength(2);
    expect(one.head).toBe(c);
    expect(await readFile(join(one.dir, 'a.txt'), 'utf8')).toBe('bye\n');
    expect(await readdir(join(one.dir, 'bin')).catch(() => [])).toEqual([]);
    expect((await git(one.dir, ['describe', '--tags'])).stdout.trim()).toBe('v2');
  });

  it('fixtureTarball is byte-for-byte reproducible and puts entries under the prefix', async () => {
    const files = { Makefile: 'all:\n', 'src/x.c': 'int x;\n', configure: '#!/bin/sh\n' };
    const a = await fixtureTarball(files, { prefix: 'pkg-1.0' });
    const b = await fixtureTarball(files, { prefix: 'pkg-1.0' });
    expect(a.equals(b)).toBe(true);
    expect(a.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const f = join(work, 'x.tar.gz');
    await writeFile(f, a);
    const list = (await run('tar', ['-tvzf', f], { cwd: work })).stdout;
    expect(list).toMatch(/-rwxr-xr-x 0\/0 .* pkg-1\.0\/configure/);
    expect(list).toContain('pkg-1.0/src/x.c');
    const xz = await fixtureTarball(files, { compression: 'xz' });
    expect(xz.subarray(0, 3)).toEqual(Buffer.from([0xfd, 0x37, 0x7a]));
  });
});
