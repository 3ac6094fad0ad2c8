import { imageName, imageTags } from '@nabla-build/plan';
import { describe, expect, it } from 'vitest';

describe('image naming and tags', () => {
  const key = 'abcdef0123456789'.repeat(4);
  it('derives semver tags plus an immutable build tag', () => {
    expect(imageTags('3.5.2', key, { extraTags: [] })).toEqual(['3.5.2', '3.5', '3', 'latest', '3.5.2-abcdef012345']);
  });
  it('adds --tag values and rejects invalid ones', () => {
    expect(imageTags('1.8.0', key, { extraTags: ['ci-42'] })).toContain('ci-42');
    expect(() => imageTags('1.8.0', key, { extraTags: ['bad tag'] })).toThrow(/not a valid tag/);
  });
  it('can publish only the immutable tag', () => {
    expect(imageTags('6.17.1', key, { extraTags: [], immutableOnly: true })).toEqual(['6.17.1-abcdef012345']);
  });
  it('names images for Docker Hub and other registries', () => {
    expect(imageName('lkl-nabla-python3-base', { registry: 'docker.io', namespace: 'acme' })).toBe(
      'docker.io/acme/lkl-nabla-python3-base',
    );
    expect(imageName('lkl-nabla-python3-base', { registry: '127.0.0.1:5000' })).toBe(
      '127.0.0.1:5000/lkl-nabla-python3-base',
    );
    expect(imageName('lkl-nabla-python3-base', {})).toBe('lkl-nabla-python3-base');
    expect(() => imageName('x', { registry: 'docker.io' })).toThrow(/needs a namespace/);
  });
});
