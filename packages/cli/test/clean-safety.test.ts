import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CACHE_MARKER, openCache } from '@nabla-build/engine';
import { snapshotTree } from '@nabla-build/testing';
import { describe, expect, it } from 'vitest';
import { cli } from './helpers.js';

/**
 * `clean` and `clean --all` remove nothing outside a cache nabla-build created, whatever the cache path is:
 * empty, relative, a foreign directory, a symlink, or a cache with symlinks planted inside. Every case plants
 * files next to and above the cache and compares a snapshot of the whole tree before and after.
 */

/** root/{above.txt, home/, work/{next.txt}, outside/{precious.txt}}; the cache goes in root/work/cache. */
function playground() {
  const root = mkdtempSync(join(tmpdir(), 'nb-clean-'));
  const home = join(root, 'home');
  const work = join(root, 'work');
  const outside = join(root, 'outside');
  for (const d of [home, work, outside]) mkdirSync(d);
  writeFileSync(join(root, 'above.txt'), 'above');
  writeFileSync(join(work, 'next.txt'), 'next to the cache');
  writeFileSync(join(home, 'dotfile'), 'home');
  writeFileSync(join(outside, 'precious.txt'), 'precious');
  const env = { HOME: home, XDG_CACHE_HOME: undefined, NABLA_BUILD_CACHE: undefined };
  return { root, home, work, outside, cache: join(work, 'cache'), env };
}

/** A cache as nabla-build creates it, with a few built entries. */
async function markedCache(dir: string): Promise<void> {
  await openCache(dir);
  for (const d of ['steps/package/x-1', 'logs', 'git/a.git', 'downloads/ab'])
    mkdirSync(join(dir, d), { recursive: true });
  writeFileSync(join(dir, 'steps/package/x-1/out.bin'), 'built');
  writeFileSync(join(dir, 'logs/x.log'), 'log');
  writeFileSync(join(dir, 'git/a.git/HEAD'), 'ref');
}

describe('clean removes only what is provably a nabla-build cache', () => {
  it.each([
    ['clean --all --cache-dir ""', ['clean', '--all', '--cache-dir', ''], {}, /--cache-dir: the path is empty/],
    ['clean --cache-dir ""', ['clean', '--cache-dir', ''], {}, /--cache-dir: the path is empty/],
    [
      'NABLA_BUILD_CACHE= clean --all',
      ['clean', '--all'],
      { NABLA_BUILD_CACHE: '' },
      /NABLA_BUILD_CACHE: the path is empty/,
    ],
    [
      'NABLA_BUILD_CACHE=" " clean --all',
      ['clean', '--all'],
      { NABLA_BUILD_CACHE: ' ' },
      /NABLA_BUILD_CACHE: the path is empty/,
    ],
    ['clean --all --cache-dir .', ['clean', '--all', '--cache-dir', '.'], {}, /--cache-dir: "\." is a relative path/],
    [
      'clean --all --cache-dir cache',
      ['clean', '--all', '--cache-dir', 'cache'],
      {},
      /--cache-dir: "cache" is a relative/,
    ],
    [
      'NABLA_BUILD_CACHE=.. clean --all',
      ['clean', '--all'],
      { NABLA_BUILD_CACHE: '..' },
      /NABLA_BUILD_CACHE: "\.\." is a relative/,
    ],
    ['XDG_CACHE_HOME= clean --all', ['clean', '--all'], { XDG_CACHE_HOME: '' }, /XDG_CACHE_HOME: the path is empty/],
    [
      'XDG_CACHE_HOME=rel clean --all',
      ['clean', '--all'],
      { XDG_CACHE_HOME: 'rel' },
      /XDG_CACHE_HOME: "rel" is a relative/,
    ],
    ['HOME= clean --all (default cache under HOME)', ['clean', '--all'], { HOME: '' }, /HOME: the path is empty/],
  ])('%s: exit 2, nothing removed', async (_name, args, env, message) => {
    const p = playground();
    await markedCache(p.cache);
    const before = snapshotTree(p.root);
    const r = await cli(args, { cwd: p.work, env: { ...p.env, ...env } });
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n')[0]).toMatch(/^error: /);
    expect(snapshotTree(p.root)).toEqual(before);
  });

  it('a foreign directory (no marker) is refused, by flag, variable and XDG default', async () => {
    const p = playground();
    const before = snapshotTree(p.root);
    for (const [args, env] of [
      [['clean', '--all', '--cache-dir', p.work], {}],
      [['clean', '--all', '--cache-dir', p.home], {}],
      [['clean', '--all', '--cache-dir', '/'], {}],
      [['clean', '--all'], { NABLA_BUILD_CACHE: p.outside }],
      [['clean'], { NABLA_BUILD_CACHE: p.root }],
      [['clean', '--all'], { XDG_CACHE_HOME: p.root, NABLA_BUILD_CACHE: undefined }],
    ] as [string[], Record<string, string>][]) {
      if (args.includes(p.root) || env.XDG_CACHE_HOME) mkdirSync(join(p.root, 'nabla-build'), { recursive: true });
      const r = await cli(args, { cwd: p.work, env: { ...p.env, ...env } });
      expect(r.exitCode, `${args.join(' ')} ${JSON.stringify(env)}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(/is not a nabla-build cache \(it has no CACHEDIR\.TAG\): nothing was removed/);
    }
    // The empty nabla-build/ made for the XDG case is the only difference.
    const after = snapshotTree(p.root);
    delete after['nabla-build'];
    expect(after).toEqual(before);
  });

  it('a marked cache that is the working directory, $HOME or an ancestor of them is refused', async () => {
    const p = playground();
    await markedCache(p.cache);
    mkdirSync(join(p.cache, 'steps', 'here'), { recursive: true });
    const before = snapshotTree(p.root);
    const inside = await cli(['clean', '--cache-dir', p.cache], { cwd: join(p.cache, 'steps', 'here'), env: p.env });
    expect(inside.exitCode, inside.stderr).toBe(2);
    expect(inside.stderr).toMatch(/refusing to remove .*steps: it is an ancestor of the working directory/);
    const all = await cli(['clean', '--all', '--cache-dir', p.cache], { cwd: p.cache, env: p.env });
    expect(all.exitCode, all.stderr).toBe(2);
    expect(all.stderr).toMatch(/refusing to remove .*cache: it is the working directory/);
    const home = await cli(['clean', '--all', '--cache-dir', p.cache], {
      cwd: p.root,
      env: { HOME: join(p.cache, 'logs') },
    });
    expect(home.exitCode, home.stderr).toBe(2);
    expect(home.stderr).toMatch(/it is an ancestor of \$HOME/);
    expect(snapshotTree(p.root)).toEqual(before);
  });

  it('symlinks planted inside a marked cache are removed, never followed', async () => {
    const p = playground();
    await markedCache(p.cache);
    symlinkSync(p.outside, join(p.cache, 'tmp')); // a whole built-steps directory that is a link
    symlinkSync(p.outside, join(p.cache, 'steps', 'package', 'x-1', 'escape'));
    symlinkSync(join(p.outside, 'precious.txt'), join(p.cache, 'logs', 'link.log'));
    symlinkSync(p.home, join(p.cache, 'home-link'));
    const outsideBefore = snapshotTree(p.root, p.cache);
    const r = await cli(['clean', '--cache-dir', p.cache], { cwd: p.work, env: p.env });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(join(p.cache, 'steps'))).toBe(false);
    expect(existsSync(join(p.cache, 'git', 'a.git', 'HEAD'))).toBe(true); // sources stay without --all
    expect(snapshotTree(p.root, p.cache)).toEqual(outsideBefore);
    const all = await cli(['clean', '--all', '--cache-dir', p.cache], { cwd: p.work, env: p.env });
    expect(all.exitCode, all.stderr).toBe(0);
    expect(existsSync(p.cache)).toBe(false);
    expect(snapshotTree(p.root)).toEqual(outsideBefore);
  });

  it('a cache path that is a symlink: only a marked target is cleaned, and the link stays', async () => {
    const p = playground();
    // A link to a foreign directory is refused.
    symlinkSync(p.outside, join(p.work, 'link-to-outside'));
    const before = snapshotTree(p.root);
    const foreign = await cli(['clean', '--all', '--cache-dir', join(p.work, 'link-to-outside')], {
      cwd: p.work,
      env: p.env,
    });
    expect(foreign.exitCode, foreign.stderr).toBe(2);
    expect(snapshotTree(p.root)).toEqual(before);
    // A link to a marked cache: its content goes, the target directory and the link stay.
    const real = join(p.root, 'real-cache');
    await markedCache(real);
    symlinkSync(real, join(p.work, 'link-to-cache'));
    const outsideBefore = snapshotTree(p.root, real);
    const ok = await cli(['clean', '--all', '--cache-dir', join(p.work, 'link-to-cache')], { cwd: p.work, env: p.env });
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(readdirSync(real)).toEqual([]);
    expect(snapshotTree(p.root, real)).toEqual(outsideBefore);
  });

  it('a cache created by nabla-build is marked and owner-only; a file or a foreign directory is not used', async () => {
    const p = playground();
    const r = await cli(['plan', 'hello', '--cache-dir', p.cache], { cwd: p.work, env: p.env });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(join(p.cache, CACHE_MARKER), 'utf8')).toMatch(
      /^Signature: 8a477f597d28d172789f06886806bc55\n.*nabla-build/,
    );
    expect(statSync(p.cache).mode & 0o777).toBe(0o700);
    expect(statSync(join(p.cache, CACHE_MARKER)).mode & 0o777).toBe(0o600);
    const before = snapshotTree(p.root);
    const file = await cli(['plan', 'hello', '--cache-dir', join(p.work, 'next.txt')], { cwd: p.work, env: p.env });
    expect(file.exitCode, file.stderr).toBe(2);
    expect(file.stderr).toMatch(/next\.txt is not a directory, so it cannot be the cache/);
    const under = await cli(['plan', 'hello', '--cache-dir', join(p.work, 'next.txt', 'c')], {
      cwd: p.work,
      env: p.env,
    });
    expect(under.exitCode, under.stderr).toBe(2);
    const foreign = await cli(['plan', 'hello', '--cache-dir', p.home], { cwd: p.work, env: p.env });
    expect(foreign.exitCode, foreign.stderr).toBe(2);
    expect(foreign.stderr).toMatch(
      /is not a nabla-build cache: it has no CACHEDIR\.TAG and holds other files \("dotfile"\)/,
    );
    expect(snapshotTree(p.root)).toEqual(before);
  });
});
