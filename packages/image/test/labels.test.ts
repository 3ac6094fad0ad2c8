import { UsageError } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';
import { commitLabel, imageLabels, NablaLabel, OciLabel, PINNED_SOURCES } from '../src/index.js';

const SHA = 'b326416aca06b8b5f58dae2833889e494b436717';

describe('imageLabels', () => {
  it('builds the full label set from plain facts, sorted, skipping absent ones', () => {
    const labels = imageLabels({
      source: 'https://github.com/acme/nabla-build',
      revision: SHA,
      version: '3.5.2',
      created: new Date('2020-04-20T00:00:00Z'),
      title: 'lkl-nabla-python3-base',
      licenses: 'PSF-2.0',
      tender: 'spt',
      solo5Version: 'v0.6.4-2-gb326416',
      solo5SptAbi: 1,
      commits: Object.fromEntries(PINNED_SOURCES.map((s) => [s, SHA])),
      patchesDigest: `sha256:${'c'.repeat(64)}`,
      toolchainKey: 'd'.repeat(64),
      recipe: 'python3',
      description: '',
    });
    expect(labels).toEqual({
      'dev.nabla-build.commit.frankenlibc': SHA,
      'dev.nabla-build.commit.lkl-linux': SHA,
      'dev.nabla-build.commit.musl': SHA,
      'dev.nabla-build.commit.rumprun-packages': SHA,
      'dev.nabla-build.commit.solo5': SHA,
      [NablaLabel.patchesDigest]: `sha256:${'c'.repeat(64)}`,
      [NablaLabel.recipe]: 'python3',
      [NablaLabel.solo5SptAbi]: '1',
      [NablaLabel.solo5Version]: 'v0.6.4-2-gb326416',
      [NablaLabel.tender]: 'spt',
      [NablaLabel.toolchainKey]: 'd'.repeat(64),
      [OciLabel.created]: '2020-04-20T00:00:00Z',
      [OciLabel.licenses]: 'PSF-2.0',
      [OciLabel.revision]: SHA,
      [OciLabel.source]: 'https://github.com/acme/nabla-build',
      [OciLabel.title]: 'lkl-nabla-python3-base',
      [OciLabel.version]: '3.5.2',
    });
    expect(Object.keys(labels)).toEqual(Object.keys(labels).sort());
  });

  it('writes nested sources dot-separated and refuses malformed values', () => {
    expect(commitLabel('frankenlibc/rumprun')).toBe('dev.nabla-build.commit.frankenlibc.rumprun');
    expect(() => commitLabel('Bad Name')).toThrow(UsageError);
    expect(() => imageLabels({ commits: { solo5: 'b326416' } })).toThrow(
      /dev\.nabla-build\.commit\.solo5.*full commit SHA/,
    );
    expect(() => imageLabels({ patchesDigest: 'c'.repeat(64) })).toThrow(UsageError);
    expect(() => imageLabels({ created: 'not a date' })).toThrow(UsageError);
  });
});
