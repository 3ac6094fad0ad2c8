import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { UsageError } from '@nabla-build/model';
import { type TarEntry as Entry, tarBytes } from '@nabla-build/testing';
import { describe, expect, it } from 'vitest';
import { blobPath, extractRootfs, MediaType, resolveInRootfs, writeJsonBlob, writeLayoutFiles } from '../src/index.js';
import { tempDir } from './helpers.js';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A layout whose layers hold exactly the given (possibly hostile) tar entries, written by hand. */
async function craftLayout(dir: string, layers: Entry[][], gzip = true): Promise<void> {
  await mkdir(join(dir, 'blobs/sha256'), { recursive: true });
  const descriptors = [];
  const diffIds = [];
  for (const entries of layers) {
    const raw = await tarBytes(entries);
    const blob = gzip ? gzipSync(raw) : raw;
    await writeFile(blobPath(dir, sha(blob)), blob);
    descriptors.push({
      mediaType: gzip ? MediaType.ociLayerGzip : MediaType.ociLayer,
      digest: sha(blob),
      size: blob.length,
    });
    diffIds.push(sha(raw));
  }
  const config = await writeJsonBlob(dir, MediaType.ociConfig, {
    architecture: 'amd64',
    os: 'linux',
    config: {},
    rootfs: { type: 'layers', diff_ids: diffIds },
  });
  const manifest = {
    schemaVersion: 2 as const,
    mediaType: MediaType.ociManifest,
    config: config.descriptor,
    layers: descriptors,
  };
  const m = await writeJsonBlob(dir, MediaType.ociManifest, manifest);
  await writeLayoutFiles(dir, m.descriptor, manifest);
}

describe('extractRootfs refuses hostile layers', () => {
  const cases: [string, Entry[]][] = [
    ['a path climbing out of the root', [{ name: '../evil', body: 'x' }]],
    ['an absolute path climbing out', [{ name: '/a/../../evil', body: 'x' }]],
    ['a relative symlink leaving the root', [{ name: 'link', type: 'symlink', linkname: '../../evil' }]],
    ['a symlink to the parent of the root', [{ name: 'up', type: 'symlink', linkname: '..' }]],
    [
      'a write through a symlink already in the tree',
      [
        { name: 'etc', type: 'symlink', linkname: '/' },
        { name: 'etc/evil', body: 'x' },
      ],
    ],
    ['a hard link to outside', [{ name: 'h', type: 'link', linkname: '../evil' }]],
    ['a device node', [{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }]],
    // Whiteouts are removals: each must name one entry inside the root, never the root or what is above it.
    ['a top-level whiteout of ".." (the root\'s parent)', [{ name: '.wh...', body: '' }]],
    ['a whiteout of "." (the root itself)', [{ name: '.wh..', body: '' }]],
    ['a whiteout of nothing', [{ name: '.wh.', body: '' }]],
    [
      'a nested whiteout of ".."',
      [
        { name: 'a', type: 'directory' },
        { name: 'a/.wh...', body: '' },
      ],
    ],
    [
      'a whiteout through a symlinked parent',
      [
        { name: 'l', type: 'symlink', linkname: '/' },
        { name: 'l/.wh.ok', body: '' },
      ],
    ],
    [
      'an opaque whiteout through a symlinked parent',
      [
        { name: 'l', type: 'symlink', linkname: '/' },
        { name: 'l/.wh..wh..opq', body: '' },
      ],
    ],
    ['a path made of ".." after normalisation', [{ name: 'a/../../x', body: 'x' }]],
  ];
  for (const [what, entries] of cases) {
    it(`refuses ${what}`, async () => {
      const tmp = await tempDir();
      const layout = join(tmp, 'work/layout');
      await craftLayout(layout, [[{ name: 'ok', body: 'fine' }, ...entries]]);
      const dest = join(tmp, 'work/rootfs');
      const err = await extractRootfs(layout, dest).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError); // bad input: exit 2
      expect(err).toMatchObject({ code: 'image.unsafe-entry', hint: expect.any(String) });
      expect((err as Error).message).toContain(JSON.stringify(entries.at(-1)?.name));
      // Nothing was written outside, and the partial rootfs was thrown away.
      expect((await readdir(join(tmp, 'work'))).sort()).toEqual(['layout']);
      expect(await readdir(tmp)).toEqual(['work']);
    });
  }

  it('allows absolute symlinks that stay inside the root, and applies whiteouts across layers', async () => {
    const tmp = await tempDir();
    const layout = join(tmp, 'layout');
    await craftLayout(layout, [
      [
        { name: './bin/', type: 'directory', mode: 0o755 },
        { name: './bin/tool', body: '#!', mode: 0o755 },
        { name: './lib/', type: 'directory' },
        { name: './lib/a', body: 'a' },
        { name: './lib/b', body: 'b' },
        { name: './old', body: 'old' },
        { name: './sbin', type: 'symlink', linkname: '/bin' },
        { name: './bin/again', type: 'link', linkname: 'bin/tool' },
      ],
      [
        { name: 'lib/.wh..wh..opq', body: '' },
        { name: 'lib/c', body: 'c' },
        { name: '.wh.old', body: '' },
      ],
    ]);
    const r = await extractRootfs(layout, join(tmp, 'rootfs'));
    const root = join(tmp, 'rootfs');
    expect((await readdir(root)).sort()).toEqual(['bin', 'lib', 'sbin']);
    expect(await readdir(join(root, 'lib'))).toEqual(['c']);
    expect(await readlink(join(root, 'sbin'))).toBe('/bin');
    expect(await readFile(join(root, 'bin/again'), 'utf8')).toBe('#!');
    expect(r.manifestDigest).toMatch(/^sha256:/);
  });

  it('detects a layer whose bytes do not match its digest', async () => {
    const tmp = await tempDir();
    const layout = join(tmp, 'layout');
    await craftLayout(layout, [[{ name: 'file', body: 'A'.repeat(100) }]], false);
    // Flip one content byte of the uncompressed layer (same size, still a valid tar).
    let flipped = 0;
    for (const name of await readdir(join(layout, 'blobs/sha256'))) {
      const p = join(layout, 'blobs/sha256', name);
      const bytes = await readFile(p);
      const at = bytes.indexOf('AAAA');
      if (at >= 0) {
        bytes[at] = 0x42;
        await writeFile(p, bytes);
        flipped++;
      }
    }
    expect(flipped).toBe(1);
    await expect(extractRootfs(layout, join(tmp, 'rootfs'))).rejects.toMatchObject({ code: 'image.corrupt-blob' });
    expect(await readdir(tmp)).toEqual(['layout']);
  });
});

describe('resolveInRootfs: a kernel path from an image stays in its rootfs', () => {
  async function rootfs(): Promise<{ root: string; outside: string }> {
    const tmp = await tempDir();
    const root = join(tmp, 'rootfs');
    await mkdir(join(root, 'bin'), { recursive: true });
    await writeFile(join(root, 'app.nabla'), 'kernel');
    await writeFile(join(tmp, 'host.nabla'), 'a host file');
    await symlink('/app.nabla', join(root, 'abs.nabla'));
    await symlink('../app.nabla', join(root, 'bin', 'rel.nabla'));
    await symlink('../../host.nabla', join(root, 'up.nabla'));
    await symlink(join(tmp, 'host.nabla'), join(root, 'host-abs.nabla'));
    await symlink('loop.nabla', join(root, 'loop.nabla'));
    await symlink('/', join(root, 'rootlink'));
    await mkdir(join(root, 'dir.nabla'));
    return { root, outside: join(tmp, 'host.nabla') };
  }

  it('resolves plain paths and symlinks that stay inside', async () => {
    const { root } = await rootfs();
    expect(await resolveInRootfs(root, '/app.nabla')).toBe(join(root, 'app.nabla'));
    expect(await resolveInRootfs(root, '/abs.nabla')).toBe(join(root, 'app.nabla'));
    expect(await resolveInRootfs(root, '/bin/rel.nabla')).toBe(join(root, 'app.nabla'));
    expect(await resolveInRootfs(root, '/rootlink/app.nabla')).toBe(join(root, 'app.nabla'));
  });

  it.each([
    ['/../../../tmp/x.nabla', /climbs with "\.\."/],
    ['/bin/../../host.nabla', /climbs with "\.\."/],
    ['app.nabla', /is not an absolute path/],
    ['/up.nabla', /leaves the rootfs through a symlink/],
    ['/loop.nabla', /too many levels of symlinks/],
    ['/dir.nabla', /is not a regular file/],
    ['/missing.nabla', /does not exist in the image/],
  ])('refuses %s', async (path, message) => {
    const { root } = await rootfs();
    const err = await resolveInRootfs(root, path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err).toMatchObject({ code: 'image.unsafe-path' });
    expect((err as Error).message).toMatch(message);
  });

  it('an absolute symlink to a host file is read inside the rootfs, never on the host', async () => {
    const { root, outside } = await rootfs();
    const err = await resolveInRootfs(root, '/host-abs.nabla').catch((e: unknown) => e);
    // The link's target is looked up under the rootfs, where it does not exist: the host file is never used.
    expect((err as Error).message).toMatch(/does not exist in the image/);
    expect(err).toBeInstanceOf(UsageError);
    expect(await readFile(outside, 'utf8')).toBe('a host file');
  });
});
