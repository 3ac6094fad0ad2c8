import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { UsageError } from '@nabla-build/model';
import tar, { type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  collectEntries,
  GZIP_BLOCK,
  type LayerEntry,
  SINGLE_STREAM_MAX,
  layerCompressionFingerprint,
  layerFormatFromFingerprint,
  MediaType,
  parseLayerFormat,
  writeLayer,
} from '../src/index.js';
import { storedRuns } from '../src/layer.js';
import { execFileP, haveTool, pseudoRandomBytes, tempDir } from './helpers.js';

const MTIME = new Date('2020-04-20T00:00:00Z');

/** The tar that layers were written as before they were written block by block: tar-stream's pack. */
async function tarStreamReference(entries: readonly LayerEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  const base = { uid: 0, gid: 0, uname: '', gname: '', mtime: MTIME };
  const add = (h: Partial<Header> & { name: string }, body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (body) pack.entry(h, body, cb);
      else pack.entry(h, cb);
    });
  for (const e of entries) {
    if (e.kind === 'dir') await add({ ...base, name: `${e.name}/`, type: 'directory', mode: 0o755 });
    else if (e.kind === 'symlink')
      await add({ ...base, name: e.name, type: 'symlink', linkname: e.target, mode: 0o777 });
    else if (e.kind === 'content')
      await add({ ...base, name: e.name, type: 'file', mode: e.mode, size: e.content.length }, e.content);
    else await add({ ...base, name: e.name, type: 'file', mode: e.mode, size: e.size }, await readFile(e.hostPath));
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** Names and links that take every path of tar-stream's header encoder: ustar, prefix split, pax. */
async function awkwardTree(root: string): Promise<void> {
  const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/${'f'.repeat(60)}`;
  await mkdir(join(root, long), { recursive: true });
  await mkdir(join(root, 'x'.repeat(120)), { recursive: true });
  await mkdir(join(root, 'ünïcode dir'), { recursive: true });
  await writeFile(join(root, long, 'n'.repeat(99)), 'long path\n');
  await writeFile(join(root, 'x'.repeat(120), 'file'), 'no slash fits\n');
  await writeFile(join(root, 'ünïcode dir', 'fïle.txt'), 'utf-8\n');
  for (const size of [0, 1, 511, 512, 513, 1000]) await writeFile(join(root, `size-${size}`), Buffer.alloc(size, 7));
  await writeFile(join(root, 'big.bin'), pseudoRandomBytes(5 * GZIP_BLOCK + 12345, 3), { mode: 0o755 });
  // Random bytes: whole blocks of them are stored, not deflated.
  await writeFile(join(root, 'random.bin'), randomBytes(3 * GZIP_BLOCK));
  await symlink('size-1', join(root, 'short-link'));
  await symlink(`${long}/${'n'.repeat(99)}`, join(root, 'long-link'));
  await symlink('ünïcode dir/fïle.txt', join(root, 'unicode-link'));
}

async function layer(
  entries: LayerEntry[],
  dir: string,
  compression: 'gzip' | 'zstd' | 'none',
  inflight?: number,
  level?: number,
) {
  await mkdir(dir, { recursive: true });
  const w = await writeLayer(entries, dir, {
    mtime: MTIME,
    compression,
    ...(inflight ? { inflight } : {}),
    ...(level ? { level } : {}),
  });
  return { ...w, blob: await readFile(join(dir, w.digest.slice('sha256:'.length))) };
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('writeLayer', () => {
  it('writes the same tar bytes as tar-stream (diff_ids unchanged), for every kind of header', async () => {
    const tmp = await tempDir();
    await awkwardTree(join(tmp, 'tree'));
    const entries = await collectEntries([
      { hostPath: join(tmp, 'tree'), imagePath: '/opt/tree' },
      { content: 'generated\n', imagePath: '/etc/generated.conf', executable: true },
    ]);
    const reference = await tarStreamReference(entries);
    const none = await layer(entries, join(tmp, 'none'), 'none');
    expect(none.blob.equals(reference)).toBe(true);
    expect(none.diffId).toBe(sha(reference));
    expect(none.digest).toBe(none.diffId);
    expect(none.mediaType).toBe(MediaType.ociLayer);
    expect(none.uncompressedSize).toBe(reference.length);
    // GNU tar reads it back: every name, including the pax ones.
    const listing = (await execFileP('tar', ['-tvf', join(tmp, 'none', none.digest.slice(7))])).stdout;
    expect(listing).toContain(`opt/tree/ünïcode dir/fïle.txt`);
    expect(listing).toContain(`opt/tree/long-link -> ${'d'.repeat(60)}/`);
    expect(listing).toContain(`opt/tree/${'x'.repeat(120)}/file`);
  });

  it('gzip: a layer up to 4 MiB is byte-identical to gzip of the tar; larger ones are one gzip member of parallel blocks', async () => {
    const tmp = await tempDir();
    // 200 kB (one block), and 3.5 MiB (several blocks, still one stream): digests as before blocks existed.
    for (const size of [200_000, 3.5 * GZIP_BLOCK]) {
      await writeFile(join(tmp, `small-${size}`), pseudoRandomBytes(size, 9));
      const small = await collectEntries([{ hostPath: join(tmp, `small-${size}`), imagePath: '/small.bin' }]);
      const s = await layer(small, join(tmp, `small-out-${size}`), 'gzip');
      const smallTar = await tarStreamReference(small);
      expect(smallTar.length).toBeLessThanOrEqual(SINGLE_STREAM_MAX);
      expect(s.blob.equals(gzipSync(smallTar, { level: 6 }))).toBe(true);
      expect(s.diffId).toBe(sha(smallTar));
    }

    await awkwardTree(join(tmp, 'tree'));
    const entries = await collectEntries([{ hostPath: join(tmp, 'tree'), imagePath: '/' }]);
    const reference = await tarStreamReference(entries);
    expect(reference.length).toBeGreaterThan(SINGLE_STREAM_MAX);
    const one = await layer(entries, join(tmp, 'one'), 'gzip', 1);
    const four = await layer(entries, join(tmp, 'four'), 'gzip', 4);
    // Blocks have a fixed size: the bytes do not depend on how many compress at once (or on cores).
    expect(four.digest).toBe(one.digest);
    expect(one.diffId).toBe(sha(reference));
    expect(one.digest).toBe(sha(one.blob));
    expect(one.size).toBe(one.blob.length);
    expect(one.mediaType).toBe(MediaType.ociLayerGzip);
    expect(gunzipSync(one.blob).equals(reference)).toBe(true);
    // Independent readers: GNU gzip checks CRC and length, and sees one member (one header, no name).
    const file = join(tmp, 'one', one.digest.slice(7));
    await execFileP('gzip', ['-t', file]);
    const list = (await execFileP('gzip', ['-lv', file])).stdout;
    expect(list.trim().split('\n')).toHaveLength(2);
    expect(list).toContain(String(reference.length));
    // Blocks are deflated at level 4 unless a level is given. Priming each block with the previous 32 KiB
    // costs almost nothing against one single stream at the same level.
    expect(one.size).toBeLessThan(gzipSync(reference, { level: 4 }).length * 1.01);
    const six = await layer(entries, join(tmp, 'six'), 'gzip', 2, 6);
    expect(six.digest).not.toBe(one.digest);
    expect(gunzipSync(six.blob).equals(reference)).toBe(true);
    expect(six.size).toBeLessThan(gzipSync(reference, { level: 6 }).length * 1.01);
  });

  it('stores file bodies that look random or compressed, and deflates text and periodic data', () => {
    const block = Buffer.alloc(GZIP_BLOCK);
    const text = Buffer.from('    def f(self, x):\n        return self.value + x  # text\n'.repeat(2000));
    const bodies = [
      text.subarray(0, 40_000), // text
      randomBytes(100_000), // random: stored,
      randomBytes(50_000), // and joined with the one before (600 bytes of header between them)
      pseudoRandomBytes(80_000, 5), // random and text in turns every 64 bytes: deflated
      gzipSync(randomBytes(30_000).toString('base64')), // already compressed: stored
      randomBytes(3000), // too small to bother
      randomBytes(9000), // random, but a run under 16 KiB costs more in zlib set-up than it saves
    ].flatMap((body, i, all) => {
      const at = all.slice(0, i).reduce((n, b, j) => n + b.length + (j === 1 ? 600 : 4096), 0);
      body.copy(block, at);
      return [at, at + body.length];
    });
    const [a1, , , z2, , , a4, z4] = bodies.slice(2);
    expect(storedRuns(block, bodies)).toEqual([
      [a1, z2],
      [a4, z4],
    ]);
    expect(storedRuns(block, [])).toEqual([]);
  });

  it('zstd: a deterministic frame the zstd program reads back', async (ctx) => {
    if (!(await haveTool('zstd'))) ctx.skip('zstd is not installed');
    const tmp = await tempDir();
    await awkwardTree(join(tmp, 'tree'));
    const entries = await collectEntries([{ hostPath: join(tmp, 'tree'), imagePath: '/' }]);
    const reference = await tarStreamReference(entries);
    const a = await layer(entries, join(tmp, 'a'), 'zstd');
    const b = await layer(entries, join(tmp, 'b'), 'zstd');
    expect(a.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(b.digest).toBe(a.digest);
    expect(a.diffId).toBe(sha(reference));
    expect(a.digest).toBe(sha(a.blob));
    const out = join(tmp, 'a.tar');
    await execFileP('zstd', ['-d', '-q', '-o', out, join(tmp, 'a', a.digest.slice(7))]);
    expect((await readFile(out)).equals(reference)).toBe(true);
  });

  it('a file that changes size during assembly fails the layer and leaves no blob', async () => {
    const tmp = await tempDir();
    await writeFile(join(tmp, 'f'), 'short');
    const entries = await collectEntries([{ hostPath: join(tmp, 'f'), imagePath: '/f' }]);
    await writeFile(join(tmp, 'f'), 'longer than before');
    await mkdir(join(tmp, 'blobs'));
    await expect(writeLayer(entries, join(tmp, 'blobs'), { mtime: MTIME, compression: 'gzip' })).rejects.toThrow(
      /did it change during assembly/,
    );
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(join(tmp, 'blobs'))).toEqual([]);
  });
  it('a compressor that fails while a file is read is reported as the layer failing, not as the file changing', async () => {
    await haveTool('zstd');
    const tmp = await tempDir();
    // zstd as the layer writer finds it on PATH, dying after its first 64 KiB of input (a crash, a full disk).
    const bin = join(tmp, 'bin');
    await mkdir(bin);
    const real = (await execFileP('sh', ['-c', 'command -v zstd'])).stdout.trim();
    await writeFile(
      join(bin, 'zstd'),
      `#!/bin/sh\ncase "$1" in --version) exec ${real} --version ;; esac\nhead -c 65536 >/dev/null\nexit 3\n`,
      { mode: 0o755 },
    );
    await writeFile(join(tmp, 'big'), pseudoRandomBytes(16 * 2 ** 20, 7));
    const entries = await collectEntries([{ hostPath: join(tmp, 'big'), imagePath: '/big' }]);
    await mkdir(join(tmp, 'blobs'));
    const path = process.env.PATH;
    process.env.PATH = `${bin}:${path}`;
    try {
      const err = await writeLayer(entries, join(tmp, 'blobs'), { mtime: MTIME, compression: 'zstd' }).catch(
        (e: unknown) => e as Error,
      );
      expect(err).toBeInstanceOf(Error);
      expect((err as Error).message).toMatch(/^writing the image layer failed: /);
      expect((err as Error).message).not.toMatch(/did it change/);
    } finally {
      process.env.PATH = path;
    }
    const { readdir } = await import('node:fs/promises');
    expect(await readdir(join(tmp, 'blobs'))).toEqual([]);
  });
});

describe('layer formats', () => {
  it('--compression values, their fingerprints (image key) and back', () => {
    expect(parseLayerFormat('gzip')).toEqual({ compression: 'gzip' });
    expect(parseLayerFormat('zstd:12')).toEqual({ compression: 'zstd', level: 12 });
    expect(parseLayerFormat('none')).toEqual({ compression: 'none' });
    for (const bad of ['gzip:0', 'gzip:10', 'zstd:20', 'none:3', 'lz4', '']) {
      expect(() => parseLayerFormat(bad)).toThrow(UsageError);
    }
    const gz = layerCompressionFingerprint('gzip');
    expect(gz).toBe(`gzip-6/zlib-${process.versions.zlib}/blocks-1MiB-level-4-above-4MiB/random-files-stored`);
    // The default (6 up to 4 MiB, 4 above) is neither gzip:6 nor gzip:4, and each reads back as itself.
    const six = layerCompressionFingerprint({ compression: 'gzip', level: 6 });
    const four = layerCompressionFingerprint({ compression: 'gzip', level: 4 });
    expect(new Set([gz, six, four]).size).toBe(3);
    expect(layerFormatFromFingerprint(gz)).toEqual({ compression: 'gzip' });
    expect(layerFormatFromFingerprint(six)).toEqual({ compression: 'gzip', level: 6 });
    expect(layerFormatFromFingerprint(four)).toEqual({ compression: 'gzip', level: 4 });
    expect(layerFormatFromFingerprint('zstd-7/zstd-v1.5.4')).toEqual({ compression: 'zstd', level: 7 });
    expect(layerFormatFromFingerprint('none')).toEqual({ compression: 'none' });
    expect(layerFormatFromFingerprint('default')).toEqual({ compression: 'gzip' });
  });
});
