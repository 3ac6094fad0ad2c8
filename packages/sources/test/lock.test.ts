import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError, InputFileError, type Lockfile, type SourceSpec, UsageError } from '@nabla-build/model';
import { fixtureGitSync as g } from '@nabla-build/testing';
import { tempDir } from '@nabla-build/testing/scratch';
import { resolveSource } from '@nabla-build/plan';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  formatLockfile,
  type LockSourcesOptions,
  lockSources,
  readLockfile,
  type SourceContext,
  writeLockfile,
} from '../src/index.js';
import { buildUpstreams, fixtureMirrors, frankenSpec, type Upstreams } from './upstreams.js';

let base: string;
let u: Upstreams;
beforeAll(async () => {
  base = await tempDir('nb-lock-');
  u = await buildUpstreams(base);
});

const SHA_A = 'a'.repeat(40);
const SHA256 = 'b'.repeat(64);
const sample: Lockfile = {
  version: 1,
  git: {
    zeta: { git: 'https://example.org/zeta.git', rev: SHA_A, submodules: {} },
    frankenlibc: {
      git: 'https://github.com/retrage/frankenlibc.git',
      rev: '21efa155cbede0aabfcc3499d4fa7d5c5586b1ab',
      submodules: {
        solo5: { git: 'https://github.com/Solo5/solo5', rev: 'b326416aca06b8b5f58dae2833889e494b436717' },
        linux: { git: 'https://github.com/ukontainer/lkl-linux', rev: 'da4435fc4185293db75bebb7959ceb6cffc20649' },
      },
    },
  },
  tarballs: { pcre: { url: 'https://ftp.pcre.org/pub/pcre/pcre-8.40.tar.gz', sha256: SHA256 } },
  patches: { 'frankenlibc:patches/solo5/0001-x.patch': SHA256, 'patches/nginx/0001-y.patch': SHA256 },
};

describe('lockfile', () => {
  it('writes sorted, stable YAML atomically and reads it back', async () => {
    const path = join(base, 'out', 'nabla.lock');
    await writeLockfile(path, sample);
    const text = await readFile(path, 'utf8');
    expect(text.startsWith('# Written by `nabla-build lock`')).toBe(true);
    expect(text.indexOf('frankenlibc:')).toBeLessThan(text.indexOf('zeta:'));
    expect(text.indexOf('linux:')).toBeLessThan(text.indexOf('solo5:'));
    expect(await readLockfile(path)).toEqual(sample);
    // Same content in another key order → the same bytes.
    const shuffled: Lockfile = {
      patches: { ...sample.patches },
      tarballs: sample.tarballs,
      git: Object.fromEntries(Object.entries(sample.git).reverse()),
      version: 1,
    };
    await writeLockfile(path, shuffled);
    expect(await readFile(path, 'utf8')).toBe(text);
    expect(await readdir(join(base, 'out'))).toEqual(['nabla.lock']);
  });

  const bad = async (text: string) => {
    const path = join(base, `bad-${Math.random().toString(36).slice(2)}.lock`);
    await writeFile(path, text);
    const e = await readLockfile(path).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InputFileError);
    return e as InputFileError;
  };

  it('reports malformed content with file:line and field', async () => {
    const good = formatLockfile(sample);
    const lines = good.split('\n');
    // A short rev on the line of frankenlibc's rev.
    const revLine = lines.findIndex((l) => l.includes('21efa155')) + 1;
    let e = await bad(good.replace('21efa155cbede0aabfcc3499d4fa7d5c5586b1ab', '21efa155'));
    expect(e.line).toBe(revLine);
    expect(e.field).toBe('git.frankenlibc.rev');
    expect(e.where).toMatch(new RegExp(`bad-.*\\.lock:${revLine}$`));
    expect(e.message).toMatch(/40-hex/);

    e = await bad(good.replace('    url: https://ftp.pcre.org', '    urls: https://ftp.pcre.org'));
    expect(e.field).toBe('tarballs.pcre.urls');
    expect(e.line).toBe(lines.findIndex((l) => l.includes('ftp.pcre.org')) + 1);

    e = await bad(good.replace(`sha256: ${SHA256}`, 'sha256: nothex'));
    expect(e.field).toBe('tarballs.pcre.sha256');

    e = await bad('version: 2\ngit: {}\n');
    expect(e).toMatchObject({ field: 'version', line: 1 });

    e = await bad('version: 1\ngit:\n  x: [1, 2\n');
    expect(e.message).toMatch(/not valid YAML/);
    expect(e.line).toBeGreaterThanOrEqual(3);

    e = await bad('version: 1\ngit:\n  x:\n    git: https://a\n');
    expect(e).toMatchObject({ field: 'git.x.rev', line: 4 });

    e = await bad('- 1\n');
    expect(e.field).toBe('(top level)');

    const missing = (await readLockfile(join(base, 'nope.lock')).catch((x: unknown) => x)) as InputFileError;
    expect(missing).toBeInstanceOf(InputFileError);
    expect(missing.hint).toMatch(/nabla-build lock/);
  });
});

describe('lockSources', () => {
  const ctx = (): SourceContext => ({
    cacheDir: join(base, 'cache'),
    mirrors: fixtureMirrors(u),
    allowLocal: true,
    target: 'all',
  });
  /** lockSources of recipe specs as the planner resolves them (`resolveSource`, with `overrides`). */
  const lock = (specs: SourceSpec[], c: SourceContext, opts?: LockSourcesOptions, overrides = {}) =>
    lockSources(
      specs.map((s) => resolveSource(s, undefined, overrides)),
      c,
      opts,
    );
  const tarball: SourceSpec = {
    kind: 'tarball',
    name: 'pcre',
    urls: ['https://ftp.pcre.org/pub/pcre/pcre-8.40.tar.gz', 'https://mirror/x'],
    sha256: SHA256,
    file: 'pcre-8.40.tar.gz',
  };

  it('locks recipe pins (validated upstream) and is idempotent to the byte', async () => {
    const specs: SourceSpec[] = [frankenSpec(u), tarball, frankenSpec(u)];
    const r1 = await lock(specs, ctx());
    expect(r1.git.frankenlibc?.rev).toBe(u.sha.franken[1]);
    expect(r1.git.frankenlibc?.submodules['musl/vendor/dep']?.rev).toBe(u.sha.dep[1]);
    expect(r1.tarballs.pcre).toEqual({ url: 'https://ftp.pcre.org/pub/pcre/pcre-8.40.tar.gz', sha256: SHA256 });
    expect(r1.updated).toEqual([]);
    const p1 = join(base, 'l1.lock');
    await writeLockfile(p1, { version: 1, git: r1.git, tarballs: r1.tarballs, patches: {} });
    const r2 = await lock(specs, { ...ctx(), offline: true });
    expect(r2.bytesFetched).toBe(0);
    const p2 = join(base, 'l2.lock');
    await writeLockfile(p2, { version: 1, git: r2.git, tarballs: r2.tarballs, patches: {} });
    expect(await readFile(p2, 'utf8')).toBe(await readFile(p1, 'utf8'));
  });

  it('--update resolves a branch (or annotated tag) with ls-remote and follows the new gitlinks', async () => {
    const spec = {
      ...frankenSpec(u),
      rev: u.sha.franken[0] as string,
      submodules: frankenSpec(u).submodules.filter((s) => s.path !== 'musl'),
    };
    // Without --update the (older, submodule-less) pin is validated as is: its gitlinks do not exist.
    await expect(lock([spec], ctx())).rejects.toMatchObject({ code: 'source.submodules-missing' });
    const r = await lock([spec], ctx(), { update: ['frankenlibc'] });
    expect(r.git.frankenlibc?.rev).toBe(u.sha.franken[1]);
    expect(r.updated).toEqual([{ name: 'frankenlibc', from: u.sha.franken[0], to: u.sha.franken[1], ref: 'solo5' }]);
    const viaTag = await lock([{ ...spec, branch: 'v1.0' }], ctx(), { update: ['frankenlibc'] });
    expect(viaTag.git.frankenlibc?.rev).toBe(u.sha.franken[1]);
    expect(g(join(u.up, 'franken.git'), 'cat-file', '-t', 'v1.0')).toBe('tag');
    const head = await lock([{ ...spec, branch: undefined, submodules: [] }], ctx(), {
      update: ['frankenlibc'],
    });
    expect(head.git.frankenlibc?.rev).toBe(u.sha.franken[2]);
    await expect(lock([{ ...spec, branch: 'no-such' }], ctx(), { update: ['frankenlibc'] })).rejects.toMatchObject({
      code: 'source.ref-missing',
    });
    // An override's rev is the pin: the branch is not resolved (here it does not even exist).
    const pinned = await lock(
      [{ ...spec, branch: 'no-such' }],
      ctx(),
      { update: ['frankenlibc'] },
      {
        frankenlibc: { rev: u.sha.franken[1] as string },
      },
    );
    expect([pinned.git.frankenlibc?.rev, pinned.updated]).toEqual([u.sha.franken[1], []]);
    await expect(lock([spec], ctx(), { update: ['nope'] })).rejects.toBeInstanceOf(UsageError);
    await expect(lock([spec, tarball], ctx(), { update: ['pcre'] })).rejects.toBeInstanceOf(UsageError);
    await expect(lock([spec], { ...ctx(), offline: true }, { update: ['frankenlibc'] })).rejects.toMatchObject({
      code: 'source.offline',
    });
  });

  it('rejects short pins and reports pins that vanished upstream', async () => {
    const short = { ...frankenSpec(u), rev: 'abc1234' };
    const e = (await lock([short], ctx()).catch((x: unknown) => x)) as UsageError;
    expect(e).toBeInstanceOf(UsageError);
    expect(e.hint).toContain('nabla-build lock --update frankenlibc');
    const subShort = frankenSpec(u);
    (subShort.submodules[0] as { rev: string }).rev = 'main';
    await expect(lock([subShort], ctx())).rejects.toThrow(/frankenlibc\/musl/);
    const gone = { ...frankenSpec(u), name: 'gone', rev: 'c'.repeat(40), submodules: [] };
    const err = (await lock([gone], ctx()).catch((x: unknown) => x)) as BuildError;
    expect(err).toBeInstanceOf(BuildError);
    expect(err.code).toBe('source.pin-missing');
    expect(err.message).toContain('gone');
    expect(err.message).toContain('c'.repeat(40));
    expect(err.message).toContain('franken.git');
    const dup = [frankenSpec(u), { ...frankenSpec(u), rev: u.sha.franken[2] as string }];
    await expect(lock(dup, ctx())).rejects.toMatchObject({ code: 'source.conflict' });
  });
});
