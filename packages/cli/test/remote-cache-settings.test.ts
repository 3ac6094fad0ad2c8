import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveSettings } from '../src/context.js';
import { remoteCacheRefs } from '../src/remote-cache.js';

describe('shared cache settings', () => {
  it('config file, then NABLA_BUILD_CACHE_FROM/TO, then flags; lists accumulate; oci: paths are made absolute', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nb-rc-settings-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'cacheFrom: oci:usb/cache\ncacheTo:\n  - 127.0.0.1:5000/team/cache\n');
    const env = {
      NABLA_BUILD_CONFIG: config,
      NABLA_BUILD_CACHE: join(dir, 'cache'),
      NABLA_BUILD_CACHE_FROM: 'ghcr.io/acme/nabla-cache, 127.0.0.1:5000/team/cache',
      NABLA_BUILD_CACHE_TO: '',
    };
    const settings = await resolveSettings({}, env);
    const refs = remoteCacheRefs(
      { cacheFrom: ['oci:/media/usb'], cacheTo: ['127.0.0.1:5000/team/cache'] },
      settings,
      env,
    );
    expect(refs.from).toEqual([
      `oci:${join(dir, 'usb', 'cache')}`,
      'ghcr.io/acme/nabla-cache',
      '127.0.0.1:5000/team/cache',
      'oci:/media/usb',
    ]);
    expect(refs.to).toEqual(['127.0.0.1:5000/team/cache']);
  });

  it('a malformed key in the config file is located', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nb-rc-settings-'));
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'cacheFrom: 3\n');
    await expect(
      resolveSettings({}, { NABLA_BUILD_CONFIG: config, NABLA_BUILD_CACHE: join(dir, 'c') }),
    ).rejects.toThrow(/cacheFrom/);
  });
});
