import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError } from '@nabla-build/model';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  applySeries,
  listSeries,
  type PatchRef,
  PatchError,
  parsePatch,
  patchTargets,
  type SeriesToApply,
  seriesDigest,
  subtreeOf,
} from '../src/index.js';

const ENV = {
  ...process.env,
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'F',
  GIT_AUTHOR_EMAIL: 'f@example.invalid',
  GIT_COMMITTER_NAME: 'F',
  GIT_COMMITTER_EMAIL: 'f@example.invalid',
  LC_ALL: 'C',
};
const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, env: ENV, encoding: 'utf8' });

const lines = (prefix: string, n: number) =>
  `${Array.from({ length: n }, (_, i) => `${prefix} line ${i + 1};`).join('\n')}\n`;

/** Original file contents of the three "submodule" trees. */
const ORIGINAL: Record<string, string> = {
  'solo5/tenders/common/elf.c': lines('elf', 60),
  'musl/src/env/__stack_chk_fail.c': lines('musl', 30),
  'linux/arch/lkl/kernel/threads.c': lines('threads', 80),
};

let base: string;
let patchDir: string;

/** Writes a patch made by real `git diff` in `tree` after `edit`, with paths rooted at the superproject. */
async function makePatch(
  name: string,
  tree: string,
  file: string,
  edit: (s: string) => string,
  header = '',
): Promise<PatchRef> {
  const work = join(base, 'patchwork', tree);
  await rm(work, { recursive: true, force: true });
  await mkdir(dirname(join(work, file)), { recursive: true });
  await writeFile(join(work, file), ORIGINAL[`${tree}/${file}`] as string);
  git(work, 'init', '-q');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'base');
  await writeFile(join(work, file), edit(ORIGINAL[`${tree}/${file}`] as string));
  const diff = git(work, 'diff', `--src-prefix=a/${tree}/`, `--dst-prefix=b/${tree}/`);
  const path = join(patchDir, name);
  await writeFile(path, header + diff);
  return { name, path };
}

/** A frankenlibc-like tree: a git superproject whose solo5/, musl/, linux/ are git repos of their own. */
async function makeTree(dir: string): Promise<string> {
  await rm(dir, { recursive: true, force: true });
  for (const tree of ['solo5', 'musl', 'linux']) {
    const t = join(dir, tree);
    for (const [p, c] of Object.entries(ORIGINAL)) {
      if (!p.startsWith(`${tree}/`)) continue;
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), c);
    }
    git(t, 'init', '-q');
    git(t, 'add', '.');
    git(t, 'commit', '-q', '-m', tree);
  }
  await writeFile(join(dir, 'build.sh'), '#!/bin/sh\n');
  await writeFile(
    join(dir, '.gitmodules'),
    ['solo5', 'musl', 'linux']
      .map((t) => `[submodule "${t}"]\n\tpath = ${t}\n\turl = git://github.com/x/${t}\n`)
      .join(''),
  );
  git(dir, 'init', '-q');
  git(dir, 'add', 'build.sh', '.gitmodules');
  for (const t of ['solo5', 'musl', 'linux']) {
    git(dir, 'update-index', '--add', '--cacheinfo', `160000,${git(join(dir, t), 'rev-parse', 'HEAD').trim()},${t}`);
  }
  git(dir, 'commit', '-q', '-m', 'root');
  return dir;
}

const replaceLine = (s: string, from: string, to: string) => s.replace(`${from}\n`, `${to}\n`);

let p1: PatchRef;
let p2: PatchRef;
let p3: PatchRef;
let p3b: PatchRef;
let pNew: PatchRef;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'nb-patch-'));
  patchDir = join(base, 'patches', 'solo5');
  await mkdir(patchDir, { recursive: true });
  // Like frankenlibc's 0001: a commit header before the diff.
  p1 = await makePatch(
    '0001-solo5-elf-segment-align-workaround.patch',
    'solo5',
    'tenders/common/elf.c',
    (s) => replaceLine(s, 'elf line 30;', 'elf line 30; /* align_up(p_vaddr_end, EM_PAGE_SIZE, &p_vaddr_end) */'),
    'commit 9865a77d8f0cbd8b5a7d6b1e0e9e1f1b2c3d4e5f\nAuthor: Someone <s@example.invalid>\nDate:   Mon Apr 6 10:00:00 2020 +0900\n\n    Add workaround for rumprun\n\n',
  );
  p2 = await makePatch('0002-musl-stack-chk-fail.patch', 'musl', 'src/env/__stack_chk_fail.c', (s) =>
    replaceLine(s, 'musl line 12;', 'musl line 12; /* ___stack_chk_fail, weak alias */'),
  );
  p3 = await makePatch('0003-linux-task-stack-size.patch', 'linux', 'arch/lkl/kernel/threads.c', (s) =>
    replaceLine(
      replaceLine(s, 'threads line 20;', 'threads line 20; /* solo5_stack_base */'),
      'threads line 60;',
      'threads line 60; /* stack_size */',
    ),
  );
  p3b = { name: p3.name, path: p3.path };
  pNew = { name: '0000-new-file.patch', path: join(patchDir, '0000-new-file.patch') };
  await writeFile(
    pNew.path,
    'diff --git a/solo5/include/new/extra.h b/solo5/include/new/extra.h\nnew file mode 100644\nindex 0000000..1111111\n--- /dev/null\n+++ b/solo5/include/new/extra.h\n@@ -0,0 +1,2 @@\n+#define EXTRA 1\n+#define MORE 2\n',
  );
  await writeFile(join(patchDir, 'README'), 'not a patch\n');
  await mkdir(join(patchDir, 'dir.patch'));
});
afterAll(() => rm(base, { recursive: true, force: true }));

const series = (patches: PatchRef[], extra: Partial<SeriesToApply> = {}): SeriesToApply => ({
  patches,
  applyIn: '',
  strip: 1,
  maxFuzz: 0,
  maxOffset: 0,
  ...extra,
});

/** Status of the superproject and of each sub-tree. */
const statusAll = (dir: string) =>
  ['', 'solo5', 'musl', 'linux'].map((t) =>
    git(join(dir, t), 'status', '--porcelain', '--ignore-submodules=none', '--untracked-files=all'),
  );
const strays = (dir: string) =>
  execFileSync('find', [dir, '-name', '*.orig', '-o', '-name', '*.rej'], { encoding: 'utf8' }).trim();

let tree: string;
let n = 0;
beforeEach(async () => {
  tree = await makeTree(join(base, `tree${++n}`));
});

describe('applySeries', () => {
  it('applies a clean series, then reports it already applied', async () => {
    const r = await applySeries(tree, series([p1, p2, p3]), {
      source: 'frankenlibc',
      rev: '21efa155cbede0aabfcc3499d4fa7d5c5586b1ab',
    });
    expect(r.map((x) => [x.name, x.status, x.fuzz, x.offset])).toEqual([
      [p1.name, 'applied', 0, 0],
      [p2.name, 'applied', 0, 0],
      [p3.name, 'applied', 0, 0],
    ]);
    expect(r[0]?.targets).toEqual(['solo5/tenders/common/elf.c']);
    expect(r.map((x) => x.trees)).toEqual([['solo5'], ['musl'], ['linux']]);
    expect(await readFile(join(tree, 'solo5/tenders/common/elf.c'), 'utf8')).toContain('align_up(p_vaddr_end');
    expect(git(join(tree, 'linux'), 'diff', '--stat')).toContain('1 file changed, 2 insertions(+), 2 deletions(-)');
    expect(strays(tree)).toBe('');
    const again = await applySeries(tree, series([p1, p2, p3]));
    expect(again.map((x) => x.status)).toEqual(['already-applied', 'already-applied', 'already-applied']);
  });

  it('skips a patch that is already applied and applies the rest', async () => {
    await applySeries(tree, series([p2]));
    const r = await applySeries(tree, series([p1, p2, p3]));
    expect(r.map((x) => x.status)).toEqual(['applied', 'already-applied', 'applied']);
  });

  it('reports offsets, and rejects them above maxOffset', async () => {
    const f = join(tree, 'solo5/tenders/common/elf.c');
    await writeFile(f, `/* 1 */\n/* 2 */\n/* 3 */\n/* 4 */\n/* 5 */\n${ORIGINAL['solo5/tenders/common/elf.c']}`);
    git(join(tree, 'solo5'), 'commit', '-q', '-am', 'upstream moved things');
    const before = statusAll(tree);
    const err = (await applySeries(tree, series([p2, p1], { maxOffset: 2 })).catch((e: unknown) => e)) as PatchError;
    expect(err).toBeInstanceOf(PatchError);
    expect(err.code).toBe('patch.failed');
    expect(err.kind).toBe('offset');
    expect(err.patch).toBe(p1.name);
    expect(err.file).toBe('solo5/tenders/common/elf.c');
    expect(err.hunk).toBe(1);
    expect(err.message).toMatch(/5 lines below/);
    expect(err.rolledBack).toEqual([p2.name]);
    expect(statusAll(tree)).toEqual(before);
    const ok = await applySeries(tree, series([p1], { maxOffset: 10 }));
    expect(ok[0]).toMatchObject({ status: 'applied', offset: 5, fuzz: 0 });
    expect(ok[0]?.hunks).toEqual([{ file: 'solo5/tenders/common/elf.c', hunk: 1, line: 32, fuzz: 0, offset: 5 }]);
  });

  it('reports fuzz, and rejects it above maxFuzz', async () => {
    // Change the outermost context line of the hunk (3 lines above the changed line).
    const f = join(tree, 'solo5/tenders/common/elf.c');
    await writeFile(
      f,
      replaceLine(ORIGINAL['solo5/tenders/common/elf.c'] as string, 'elf line 27;', 'elf line 27 (edited upstream);'),
    );
    git(join(tree, 'solo5'), 'commit', '-q', '-am', 'upstream edit');
    const before = statusAll(tree);
    const err = (await applySeries(tree, series([p1])).catch((e: unknown) => e)) as PatchError;
    expect(err.kind).toBe('fuzz');
    expect(err.message).toContain(p1.name);
    expect(err.message).toContain('hunk #1 of solo5/tenders/common/elf.c');
    expect(err.message).toMatch(/fuzz 1/);
    expect(statusAll(tree)).toEqual(before);
    const ok = await applySeries(tree, series([p1], { maxFuzz: 2 }));
    expect(ok[0]).toMatchObject({ status: 'applied', fuzz: 1 });
  });

  it('a conflicting patch names patch, file and hunk, rolls the series back and leaves git status as it was', async () => {
    // Pre-existing local state that must survive untouched: a modified file and an untracked one.
    await writeFile(join(tree, 'build.sh'), '#!/bin/sh\necho local change\n');
    await writeFile(join(tree, 'musl', 'untracked.txt'), 'mine\n');
    const f = join(tree, 'linux/arch/lkl/kernel/threads.c');
    await writeFile(
      f,
      replaceLine(
        ORIGINAL['linux/arch/lkl/kernel/threads.c'] as string,
        'threads line 60;',
        'threads line 60 changed upstream;',
      ),
    );
    git(join(tree, 'linux'), 'commit', '-q', '-am', 'upstream change');
    const before = statusAll(tree);
    const err = (await applySeries(tree, series([pNew, p1, p2, p3b]), {
      source: 'frankenlibc',
      rev: '21efa155cbede0aabfcc3499d4fa7d5c5586b1ab',
    }).catch((e: unknown) => e)) as PatchError;
    expect(err).toBeInstanceOf(PatchError);
    expect(err.exitCode).toBe(1);
    expect(err.kind).toBe('conflict');
    expect(err.patch).toBe('0003-linux-task-stack-size.patch');
    expect(err.file).toBe('linux/arch/lkl/kernel/threads.c');
    expect(err.hunk).toBe(2);
    expect(err.message).toContain('0003-linux-task-stack-size.patch');
    expect(err.message).toContain('hunk #2 of linux/arch/lkl/kernel/threads.c');
    expect(err.message).toContain('conflict');
    expect(err.where).toBe(`${p3.path} hunk #2`);
    expect(err.hint).toContain('frankenlibc@21efa155cbed');
    expect(err.hint).toContain(
      `git -C ${join(tree, 'linux')} diff --src-prefix=a/linux/ --dst-prefix=b/linux/ > ${p3.path}`,
    );
    expect(err.rolledBack).toEqual([p2.name, p1.name, pNew.name]);
    expect(statusAll(tree)).toEqual(before);
    expect(await readFile(join(tree, 'solo5/tenders/common/elf.c'), 'utf8')).toBe(
      ORIGINAL['solo5/tenders/common/elf.c'],
    );
    expect(await readFile(join(tree, 'build.sh'), 'utf8')).toBe('#!/bin/sh\necho local change\n');
    expect(strays(tree)).toBe('');
    // The file and directories the first patch created are gone again.
    expect(() => execFileSync('test', ['-e', join(tree, 'solo5/include')])).toThrow();
  });

  it('in a build step (transient tree) an upstream patch is never to be refreshed, a project one is, and no hint points into the tree', async () => {
    const f = join(tree, 'linux/arch/lkl/kernel/threads.c');
    await writeFile(
      f,
      replaceLine(
        ORIGINAL['linux/arch/lkl/kernel/threads.c'] as string,
        'threads line 60;',
        'threads line 60 changed upstream;',
      ),
    );
    git(join(tree, 'linux'), 'commit', '-q', '-am', 'upstream change');
    const linuxRev = git(join(tree, 'linux'), 'rev-parse', 'HEAD').trim();
    const trees = [
      { path: '', git: 'https://github.com/retrage/frankenlibc.git', rev: '21efa155cbede0aabfcc3499d4fa7d5c5586b1ab' },
      { path: 'linux', git: 'https://github.com/ukontainer/lkl-linux.git', rev: linuxRev },
    ];
    const common = { source: 'frankenlibc', rev: trees[0]?.rev as string, trees, transient: true };
    const up = (await applySeries(tree, series([p3b]), { ...common, origin: 'upstream' }).catch(
      (e: unknown) => e,
    )) as PatchError;
    expect(up).toBeInstanceOf(PatchError);
    expect(up.hint).toContain('ships with frankenlibc');
    expect(up.hint).toContain('do not edit it');
    expect(up.hint).toContain(`frankenlibc/linux@${linuxRev.slice(0, 12)}`);
    expect(up.hint).not.toContain('refresh');
    expect(up.hint).not.toContain(tree);
    expect(up.where).not.toContain(tree);
    const own = (await applySeries(tree, series([p3b]), { ...common, origin: 'project' }).catch(
      (e: unknown) => e,
    )) as PatchError;
    expect(own.hint).toContain(`refresh the project patch against frankenlibc/linux@${linuxRev.slice(0, 12)}`);
    expect(own.hint).toContain(
      `git clone https://github.com/ukontainer/lkl-linux.git t && git -C t checkout ${linuxRev}`,
    );
    expect(own.hint).toContain(`git diff --src-prefix=a/linux/ --dst-prefix=b/linux/ > ${p3b.path}`);
    expect(own.hint).not.toContain(tree);
  });

  it('restores file modes on rollback', async () => {
    const f = join(tree, 'musl/src/env/__stack_chk_fail.c');
    await chmod(f, 0o755);
    git(join(tree, 'musl'), 'commit', '-q', '-am', 'mode');
    const f3 = join(tree, 'linux/arch/lkl/kernel/threads.c');
    await writeFile(f3, 'entirely different\n');
    const before = statusAll(tree);
    await expect(applySeries(tree, series([p2, p3]))).rejects.toBeInstanceOf(PatchError);
    expect(statusAll(tree)).toEqual(before);
    expect(git(join(tree, 'musl'), 'ls-files', '-s', 'src/env/__stack_chk_fail.c').slice(0, 6)).toBe('100755');
  });

  it('detects a partially applied patch', async () => {
    const f = join(tree, 'linux/arch/lkl/kernel/threads.c');
    await writeFile(
      f,
      replaceLine(
        ORIGINAL['linux/arch/lkl/kernel/threads.c'] as string,
        'threads line 20;',
        'threads line 20; /* solo5_stack_base */',
      ),
    );
    const err = (await applySeries(tree, series([p3])).catch((e: unknown) => e)) as PatchError;
    expect(err.kind).toBe('partially-applied');
    expect(err.hunk).toBe(1);
    expect(err.file).toBe('linux/arch/lkl/kernel/threads.c');
  });

  it('a missing target file or wrong strip level is reported as such', async () => {
    await rm(join(tree, 'musl/src/env/__stack_chk_fail.c'));
    const err = (await applySeries(tree, series([p2])).catch((e: unknown) => e)) as PatchError;
    expect(err.kind).toBe('missing-file');
    expect(err.file).toBe('musl/src/env/__stack_chk_fail.c');
    expect(err.hint).toMatch(/strip/);
    const wrong = (await applySeries(tree, series([p1], { strip: 0 })).catch((e: unknown) => e)) as PatchError;
    expect(wrong.kind).toBe('missing-file');
  });

  it('applies within a sub-directory (applyIn) and rejects a missing one', async () => {
    const inSolo5 = join(base, 'in-solo5.patch');
    await writeFile(
      inSolo5,
      (await readFile(p1.path, 'utf8')).replaceAll('a/solo5/', 'a/').replaceAll('b/solo5/', 'b/'),
    );
    const r = await applySeries(tree, series([{ name: 'in-solo5.patch', path: inSolo5 }], { applyIn: 'solo5' }));
    expect(r[0]?.targets).toEqual(['solo5/tenders/common/elf.c']);
    await expect(applySeries(tree, series([p1], { applyIn: 'nope' }))).rejects.toBeInstanceOf(UsageError);
  });

  it('a malformed patch is reported, nothing changes', async () => {
    const bad = join(base, 'bad.patch');
    await writeFile(
      bad,
      '--- a/musl/src/env/__stack_chk_fail.c\n+++ b/musl/src/env/__stack_chk_fail.c\n@@ -1,3 +1,3 @@\n musl line 1;\n-musl line 2;\n',
    );
    const before = statusAll(tree);
    const err = (await applySeries(tree, series([{ name: 'bad.patch', path: bad }])).catch(
      (e: unknown) => e,
    )) as PatchError;
    expect(err).toBeInstanceOf(PatchError);
    expect(['malformed', 'conflict']).toContain(err.kind);
    expect(statusAll(tree)).toEqual(before);
  });
});

describe('parsePatch', () => {
  it('finds targets past a commit header, with hunks, kinds and strip', async () => {
    const t = parsePatch(await readFile(p1.path, 'utf8'), 1);
    expect(t).toHaveLength(1);
    expect(t[0]).toMatchObject({ path: 'solo5/tenders/common/elf.c', kind: 'modify' });
    expect(t[0]?.hunks.map((h) => h.index)).toEqual([1]);
    expect(t[0]?.patchLine).toBe(7);
    expect(parsePatch(await readFile(pNew.path, 'utf8'), 1)).toMatchObject([
      { path: 'solo5/include/new/extra.h', kind: 'create' },
    ]);
    expect(parsePatch(await readFile(p3.path, 'utf8'), 2)[0]?.path).toBe('arch/lkl/kernel/threads.c');
  });

  it('is not fooled by removed lines that look like headers, and knows deletes and renames', () => {
    const text = [
      '--- a/doc/x.txt\t2020-01-01 00:00:00',
      '+++ b/doc/x.txt\t2020-01-02 00:00:00',
      '@@ -1,3 +1,2 @@',
      ' keep',
      '--- not a header',
      '+++ also not',
      ' end',
      'diff --git a/gone.c b/gone.c',
      'deleted file mode 100644',
      '--- a/gone.c',
      '+++ /dev/null',
      '@@ -1 +0,0 @@',
      '-x',
      'diff --git a/old name.c b/new name.c',
      'similarity index 90%',
      'rename from old name.c',
      'rename to new name.c',
      'diff --git "a/q\\tx" "b/q\\tx"',
      '--- "a/q\\tx"',
      '+++ "b/q\\tx"',
      '@@ -1 +1 @@',
      '-a',
      '+b',
    ].join('\n');
    const t = parsePatch(text, 1);
    expect(t.map((x) => [x.path, x.kind, x.hunks.length])).toEqual([
      ['doc/x.txt', 'modify', 1],
      ['gone.c', 'delete', 1],
      ['new name.c', 'rename', 0],
      ['q\tx', 'modify', 1],
    ]);
    expect(t[2]?.oldPath).toBe('old name.c');
  });

  it('tells which sub-tree each patch of a series touches', async () => {
    const trees = ['', 'solo5', 'musl', 'linux'];
    const touched = [];
    for (const ref of await listSeries(patchDir)) {
      touched.push([ref.name, ...(await patchTargets(ref, 1)).map((t) => subtreeOf(t.path, trees))]);
    }
    expect(touched).toEqual([
      [pNew.name, 'solo5'],
      [p1.name, 'solo5'],
      [p2.name, 'musl'],
      [p3.name, 'linux'],
    ]);
  });

  it('subtreeOf picks the deepest tree', () => {
    const trees = ['', 'musl', 'musl/vendor/dep', 'solo5'];
    expect(subtreeOf('musl/vendor/dep/dep.h', trees)).toBe('musl/vendor/dep');
    expect(subtreeOf('musl/src/a.c', trees)).toBe('musl');
    expect(subtreeOf('build.sh', trees)).toBe('');
    expect(subtreeOf('solo5x/a', ['solo5'])).toBeUndefined();
  });
});

describe('series files', () => {
  it('listSeries returns sorted *.patch files only; an unreadable dir is a UsageError', async () => {
    const list = await listSeries(patchDir);
    expect(list.map((p) => p.name)).toEqual([pNew.name, p1.name, p2.name, p3.name]);
    expect(list[0]?.path).toBe(pNew.path);
    await expect(listSeries(join(base, 'missing'))).rejects.toBeInstanceOf(UsageError);
    await expect(listSeries(p1.path)).rejects.toMatchObject({ code: 'patch.series-unreadable' });
  });

  it('seriesDigest depends on order, names and contents', async () => {
    const d = await seriesDigest([p1, p2]);
    expect(d).toMatch(/^[0-9a-f]{64}$/);
    expect(await seriesDigest([p1, p2])).toBe(d);
    expect(await seriesDigest([p1.path, p2.path])).toBe(d);
    expect(await seriesDigest([p2, p1])).not.toBe(d);
    expect(await seriesDigest([{ ...p1, name: 'renamed.patch' }, p2])).not.toBe(d);
    const copy = join(base, 'copy.patch');
    await writeFile(copy, `${await readFile(p2.path, 'utf8')}\n`);
    expect(await seriesDigest([p1, { name: p2.name, path: copy }])).not.toBe(d);
    expect(await seriesDigest([])).not.toBe(d);
    await expect(seriesDigest([join(base, 'nope.patch')])).rejects.toBeInstanceOf(UsageError);
  });
});
