import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assembleImage, layerMemoryBound } from '../src/index.js';
import { pseudoRandomBytes, tempDir } from './helpers.js';

/** 250 MB in 20,000 files under 400 directories: slices of a 4 MiB pool, so writing the tree is quick. */
async function tree250(root: string): Promise<number> {
  const pool = pseudoRandomBytes(4 * 1024 * 1024, 11);
  let bytes = 0;
  for (let d = 0; d < 400; d++) {
    const dir = join(root, `lib/pkg${d % 20}/sub${d}`);
    await mkdir(dir, { recursive: true });
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      const n = d * 50 + i;
      const size = n === 0 ? 20 * 1024 * 1024 : 2_000 + ((n * 7919) % 21_000);
      const start = (n * 104_729) % (pool.length - Math.min(size, pool.length));
      const body = size <= pool.length ? pool.subarray(start, start + size) : Buffer.alloc(size, n);
      writes.push(writeFile(join(dir, `m${n}.py`), body));
      bytes += size;
    }
    await Promise.all(writes);
  }
  return bytes;
}

describe('assembling a 250 MB / 20,000-file tree', () => {
  it('keeps memory bounded: the process grows by far less than the layer', async () => {
    const tmp = await tempDir();
    const bytes = await tree250(join(tmp, 'tree'));
    expect(bytes).toBeGreaterThan(250_000_000);
    globalThis.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const timer = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 10);
    const r = await assembleImage(
      {
        files: [{ hostPath: join(tmp, 'tree'), imagePath: '/' }],
        config: { entrypoint: ['/lib/pkg0/sub0/m0.py'], cmd: [], env: {}, labels: {}, exposedPorts: [] },
        created: new Date('2020-04-20T00:00:00Z'),
        // Level 1: memory does not depend on the level, and the test stays quick.
        compression: 'gzip',
        level: 1,
      },
      join(tmp, 'out'),
    ).finally(() => clearInterval(timer));
    peak = Math.max(peak, process.memoryUsage().rss);
    expect(r.entries).toBe(20_000 + 400 + 20 + 1);
    expect(r.sizes.uncompressedLayers[0]).toBeGreaterThan(bytes);
    // Layer data in flight is at most layerMemoryBound() (≤ 15 MiB). The rest of the growth is the 20,000
    // entries, the thread pool's zlib states and compressed blocks already written but not yet collected (V8
    // collects once ≈64 MiB of buffers are garbage). Measured: ≈65 MiB, a quarter of the 250 MB layer; a
    // layer held in memory would be ≥ 250 MB. The bench measures a whole assembly process: ≈120 MiB peak.
    expect(layerMemoryBound()).toBeLessThanOrEqual(15 * 1024 * 1024);
    const grew = peak - before;
    console.log(`250 MB tree: RSS ${Math.round(before / 2 ** 20)} → peak ${Math.round(peak / 2 ** 20)} MiB`);
    expect(grew).toBeLessThan(100 * 1024 * 1024);
  }, 300_000);
});
