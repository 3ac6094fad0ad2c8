import { UsageError } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';
import {
  applyMirrors,
  canonicalGitUrl,
  DEFAULT_MIRROR_RULES,
  gitMirrorDir,
  mirrorsFromEnv,
  parseMirrorList,
  parseMirrorSpec,
  resolveMirror,
  validateMirrorRules,
} from '../src/index.js';

describe('mirror rules', () => {
  const rules = [
    parseMirrorSpec('https://github.com/=https://mirror.example/gh/', 'config nabla.yaml'),
    parseMirrorSpec('https://github.com/ukontainer/=https://mirror.example/uk/', '--mirror'),
  ];

  it('uses the longest matching prefix', () => {
    expect(applyMirrors('https://github.com/ukontainer/musl.git', rules)).toBe('https://mirror.example/uk/musl.git');
    expect(applyMirrors('https://github.com/Solo5/solo5', rules)).toBe('https://mirror.example/gh/Solo5/solo5');
    expect(applyMirrors('https://nginx.org/download/nginx-1.8.0.tar.gz', rules)).toBe(
      'https://nginx.org/download/nginx-1.8.0.tar.gz',
    );
  });

  it('rewrites dead git://github.com URLs to https by default, then applies user rules to the result', () => {
    expect(DEFAULT_MIRROR_RULES[0]?.prefix).toBe('git://github.com/');
    expect(applyMirrors('git://github.com/llvm/llvm-project.git', [])).toBe('https://github.com/llvm/llvm-project.git');
    const r = resolveMirror('git://github.com/ukontainer/lkl-linux', rules);
    expect(r.url).toBe('https://mirror.example/uk/lkl-linux');
    expect(r.rules.map((x) => x.origin)).toEqual([DEFAULT_MIRROR_RULES[0]?.origin, '--mirror']);
    // A user rule on the git:// prefix itself wins over the default.
    const own = [parseMirrorSpec('git://github.com/=https://other.example/', 'env')];
    expect(applyMirrors('git://github.com/a/b', own)).toBe('https://other.example/a/b');
    expect(applyMirrors('git://github.com/a/b', [], { noDefaults: true })).toBe('git://github.com/a/b');
  });

  it('refuses local replacements unless allowLocal, naming the rule origin', () => {
    const local = [parseMirrorSpec('https://github.com/fixture/=/srv/git/', 'NABLA_BUILD_MIRRORS')];
    const fileUrl = [parseMirrorSpec('https://x.example/=file:///srv/t/', 'config /etc/nabla.yaml')];
    let err: unknown;
    try {
      applyMirrors('https://github.com/fixture/musl.git', local);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toContain('NABLA_BUILD_MIRRORS');
    expect((err as UsageError).hint).toContain('allowLocal');
    expect(() => applyMirrors('https://x.example/a.tgz', fileUrl)).toThrow(/config \/etc\/nabla\.yaml/);
    expect(() => validateMirrorRules(local)).toThrow(UsageError);
    // Only a matching rule matters.
    expect(applyMirrors('https://nginx.org/x', local)).toBe('https://nginx.org/x');
    expect(applyMirrors('https://github.com/fixture/musl.git', local, { allowLocal: true })).toBe('/srv/git/musl.git');
    expect(resolveMirror('https://x.example/a.tgz', fileUrl, { allowLocal: true })).toMatchObject({
      url: 'file:///srv/t/a.tgz',
      local: true,
    });
  });

  it('parses prefix=replacement specs and rejects malformed ones', () => {
    expect(parseMirrorSpec(' https://a/ = https://b/ ', 'x')).toEqual({
      prefix: 'https://a/',
      replacement: 'https://b/',
      origin: 'x',
    });
    for (const bad of [
      'https://a/',
      '=https://b/',
      'https://a/=',
      'github.com/=https://b/',
      'https://a/=relative/dir',
    ]) {
      expect(() => parseMirrorSpec(bad, '--mirror'), bad).toThrow(UsageError);
    }
    try {
      parseMirrorSpec('nonsense', '--mirror');
    } catch (e) {
      expect((e as UsageError).where).toBe('--mirror');
      expect((e as UsageError).exitCode).toBe(2);
    }
  });

  it('reads NABLA_BUILD_MIRRORS as a comma or newline separated list', () => {
    const env = { NABLA_BUILD_MIRRORS: 'https://a/=https://b/, https://c/=https://d/\n\nhttps://e/=/srv/e/\n' };
    const list = mirrorsFromEnv(env);
    expect(list.map((r) => r.prefix)).toEqual(['https://a/', 'https://c/', 'https://e/']);
    expect(list.every((r) => r.origin === 'NABLA_BUILD_MIRRORS')).toBe(true);
    expect(mirrorsFromEnv({})).toEqual([]);
    expect(() => parseMirrorList('https://a/=https://b/,oops', 'NABLA_BUILD_MIRRORS')).toThrow(/oops/);
  });
});

describe('cache layout', () => {
  it('keys git mirrors by the canonical URL', () => {
    const a = gitMirrorDir('/c', 'git://github.com/ukontainer/musl.git');
    expect(a).toBe(gitMirrorDir('/c', 'https://github.com/ukontainer/musl'));
    expect(a).toBe(gitMirrorDir('/c', 'https://GitHub.com/ukontainer/musl.git/'));
    expect(a).toMatch(/^\/c\/git\/[0-9a-f]{16}-musl\.git$/);
    expect(gitMirrorDir('/c', 'https://github.com/retrage/musl')).not.toBe(a);
    expect(canonicalGitUrl('git://github.com/Solo5/solo5')).toBe('https://github.com/Solo5/solo5');
  });
});
