import { chmod, mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleImage, extractRootfs } from '../src/index.js';
import { pseudoRandomBytes, tempDir } from './helpers.js';

/** A python3-base-sized tree: a 20 MB unikernel plus 1999 small files in 40 directories (~25 MB in all). */
async function bigTree(root: string, variant: number): Promise<number> {
  await mkdir(root, { recursive: true });
  const kernel = pseudoRandomBytes(20 * 1024 * 1024, 42);
  await writeFile(join(root, 'python3.nabla'), kernel);
  await chmod(join(root, 'python3.nabla'), variant ? 0o700 : 0o755);
  let bytes = kernel.length;
  for (let i = 0; i < 1999; i++) {
    const dir = join(root, 'lib', `pkg${i % 40}`);
    await mkdir(dir, { recursive: true });
    const body = pseudoRandomBytes(512 + ((i * 7919) % 4800), i + 1);
    await writeFile(join(dir, `mod${i}.py`), body);
    if (variant) await utimes(join(dir, `mod${i}.py`), new Date(1e12 + i * 1000), new Date(1e12 + i * 1000));
    bytes += body.length;
  }
  return bytes;
}

describe('assembling a 25 MB / 2000-file tree', () => {
  it('is deterministic and fast enough to run on every build', async () => {
    const tmp = await tempDir();
    const bytes = await bigTree(join(tmp, 'a'), 0);
    await bigTree(join(tmp, 'b'), 1);
    const input = (root: string, compression: 'gzip' | 'none') => ({
      files: [
        { hostPath: join(root, 'python3.nabla'), imagePath: '/python3.nabla' },
        { hostPath: join(root, 'lib'), imagePath: '/usr/local/lib/python3.5' },
      ],
      config: {
        entrypoint: ['/python3.nabla'],
        cmd: [],
        env: { PYTHONHOME: '/usr/local' },
        labels: {},
        exposedPorts: [],
      },
      created: new Date('2020-04-20T00:00:00Z'),
      compression,
    });
    const timings: Record<string, number> = {};
    const time = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
      const t = performance.now();
      const r = await f();
      timings[label] = Math.round(performance.now() - t);
      return r;
    };
    const a = await time('gzip', () => assembleImage(input(join(tmp, 'a'), 'gzip'), join(tmp, 'out-a')));
    const b = await time('gzip (second copy)', () => assembleImage(input(join(tmp, 'b'), 'gzip'), join(tmp, 'out-b')));
    const n = await time('none', () => assembleImage(input(join(tmp, 'a'), 'none'), join(tmp, 'out-n')));
    const x = await time('extractRootfs', () => extractRootfs(join(tmp, 'out-a'), join(tmp, 'rootfs')));
    expect(b.manifestDigest).toBe(a.manifestDigest);
    expect(n.layerDigests).toEqual(a.diffIds);
    // The unikernel, the files, their 40 directories and usr, usr/local, usr/local/lib, usr/local/lib/python3.5.
    expect(a.entries).toBe(1 + 1999 + 40 + 4);
    expect(x.bytes).toBe(bytes);
    console.log(
      `25 MB tree (${bytes} bytes, ${a.entries} entries): ${JSON.stringify(timings)} ms; gzip layer ${a.sizes.layers[0]} bytes, tar ${a.sizes.uncompressedLayers[0]} bytes`,
    );
  });
});
