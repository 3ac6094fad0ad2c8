import { describe, expect, it } from 'vitest';
import type { StepKind } from '@nabla-build/model';
import { createExecutors } from '../src/executors.js';

const env = {
  cacheDir: '/nonexistent',
  patchesDir: '/nonexistent',
  mirrors: [],
  allowLocal: false,
  offline: true,
  targets: [],
  env: {},
  publish: {
    insecureRegistries: [],
    smokeBeforePush: false,
    credentials: () => ({ get: async () => undefined }),
    onPublished: () => {},
  },
};

describe('createExecutors', () => {
  it('has an adapter for every step kind; only toolchain steps resume an interrupted attempt', () => {
    const { byKind } = createExecutors(env);
    const kinds: StepKind[] = ['fetch', 'patch', 'toolchain', 'package', 'image', 'publish'];
    expect(Object.keys(byKind).sort()).toEqual([...kinds].sort());
    expect(kinds.filter((k) => byKind[k].resumable)).toEqual(['toolchain']);
  });

  it('warm loads every adapter module and the spawner without running a step', async () => {
    await expect(
      createExecutors(env).warm(['fetch', 'patch', 'toolchain', 'package', 'image', 'publish']),
    ).resolves.toBeUndefined();
  });
});
