import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { type ChunkInfo, extractChunk } from '../src/index.js';

/** A gzip tar chunk with the given entries, written to a file (as a hostile registry could serve it). */
async function chunkFile(
  entries: { name: string; type?: 'file' | 'symlink' | 'link'; linkname?: string; body?: string }[],
) {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type === 'symlink' || e.type === 'link') pack.entry({ name: e.name, type: e.type, linkname: e.linkname });
    else pack.entry({ name: e.name, mode: 0o644 }, e.body ?? 'x');
  }
  pack.finalize();
  const parts: Buffer[] = [];
  for await (const c of pack) parts.push(c as Buffer);
  const file = join(mkdtempSync(join(tmpdir(), 'nb-rc-chunk-')), 'chunk');
  writeFileSync(file, gzipSync(Buffer.concat(parts)));
  return file;
}

const info: ChunkInfo = {
  digest: `sha256:${'0'.repeat(64)}`,
  diffId: `sha256:${'0'.repeat(64)}`,
  size: 0,
  uncompressedSize: 0,
  entries: 0,
};

describe('extracting a chunk', () => {
  it('refuses a name that leaves the entry directory', async () => {
    const dest = mkdtempSync(join(tmpdir(), 'nb-rc-dest-'));
    const file = await chunkFile([{ name: '../escaped' }]);
    await expect(extractChunk(file, info, join(dest, 'entry'), 1_600_000_000)).rejects.toThrow(
      /leaves the entry directory/,
    );
    expect(existsSync(join(dest, 'escaped'))).toBe(false);
  });

  it('refuses a file below a symlink of the entry (which could point anywhere)', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'nb-rc-outside-'));
    const dest = mkdtempSync(join(tmpdir(), 'nb-rc-dest-'));
    const file = await chunkFile([{ name: 'link', type: 'symlink', linkname: outside }, { name: 'link/planted' }]);
    await expect(extractChunk(file, info, dest, 1_600_000_000)).rejects.toThrow(/below a symlink/);
    expect(existsSync(join(outside, 'planted'))).toBe(false);
  });

  it('refuses hard links, and content that does not match its diffId', async () => {
    const dest = mkdtempSync(join(tmpdir(), 'nb-rc-dest-'));
    const hard = await chunkFile([{ name: 'a' }, { name: 'b', type: 'link', linkname: 'a' }]);
    await expect(extractChunk(hard, info, dest, 1_600_000_000)).rejects.toThrow(/unsupported type link/);
    const plain = await chunkFile([{ name: 'ok' }]);
    await expect(extractChunk(plain, info, mkdtempSync(join(tmpdir(), 'nb-rc-dest-')), 1_600_000_000)).rejects.toThrow(
      /does not match its diffId/,
    );
  });
});

describe('extracting chunks of one entry', () => {
  it('never writes through a symlink another chunk created', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'nb-rc-outside-'));
    const dest = mkdtempSync(join(tmpdir(), 'nb-rc-dest-'));
    const first = await chunkFile([{ name: 'link', type: 'symlink', linkname: outside }]);
    const second = await chunkFile([{ name: 'link/sub/planted' }]);
    await expect(extractChunk(first, info, dest, 1_600_000_000)).rejects.toThrow(/diffId/);
    expect(existsSync(join(dest, 'link'))).toBe(true);
    await expect(extractChunk(second, info, dest, 1_600_000_000)).rejects.toThrow(/not a directory/);
    expect(existsSync(join(outside, 'sub'))).toBe(false);
  });
});
