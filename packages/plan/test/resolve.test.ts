import type { GitSourceSpec, TarballSourceSpec } from '@nabla-build/model';
import { resolveSource } from '@nabla-build/plan';
import { describe, expect, it } from 'vitest';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const spec: GitSourceSpec = {
  kind: 'git',
  name: 'franken',
  git: 'https://example.org/franken.git',
  rev: A,
  submodules: [
    {
      path: 'musl',
      git: 'https://example.org/musl.git',
      rev: A,
      submodules: [{ path: 'dep', git: 'https://example.org/dep.git', rev: A, submodules: [] }],
    },
  ],
};

describe('resolveSource: the resolved spec and which pins an override chose', () => {
  it('without overrides the spec is the recipe’s and no pin is an override’s', () => {
    expect(resolveSource(spec, undefined, {})).toEqual({ spec, overridden: [], moved: [] });
  });

  it('a rev override is overridden, and moved only when it differs from the recipe’s; a URL override is neither', () => {
    const r = resolveSource(spec, undefined, {
      franken: { rev: A },
      'franken/musl': { git: 'file:///fork', rev: B },
      'franken/musl/dep': { git: 'file:///dep' },
    });
    expect([r.overridden, r.moved]).toEqual([['franken', 'franken/musl'], ['franken/musl']]);
    const musl = r.spec.kind === 'git' ? r.spec.submodules[0] : undefined;
    expect([musl?.git, musl?.rev, musl?.submodules[0]?.git, musl?.submodules[0]?.rev]).toEqual([
      'file:///fork',
      B,
      'file:///dep',
      A,
    ]);
  });

  it('a tarball sha256 override is overridden (never moved), and its URL replaces the recipe’s', () => {
    const t: TarballSourceSpec = {
      kind: 'tarball',
      name: 'pcre',
      urls: ['https://x/p.tgz'],
      sha256: '0'.repeat(64),
      file: 'p.tgz',
    };
    const r = resolveSource(t, undefined, { pcre: { url: 'https://y/p.tgz', sha256: '1'.repeat(64) } });
    expect(r).toEqual({
      spec: { ...t, urls: ['https://y/p.tgz'], sha256: '1'.repeat(64) },
      overridden: ['pcre'],
      moved: [],
    });
  });
});
