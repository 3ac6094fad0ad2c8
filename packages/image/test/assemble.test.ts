import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  chmod,
  chown,
  lstat,
  mkdir,
  readFile,
  readlink,
  readdir,
  stat,
  symlink,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { BuildError, UsageError } from '@nabla-build/model';
import tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import {
  type AssembleInput,
  assembleImage,
  blobPath,
  collectEntries,
  extractRootfs,
  imageLabels,
  layoutToTarStream,
  MediaType,
  readLayout,
  sbom,
} from '../src/index.js';
import { execFileP, haveTool, pseudoRandomBytes, tempDir } from './helpers.js';

const CREATED = new Date('2020-04-20T12:00:00Z');

/**
 * Writes the same artifact tree with different host attributes: `variant` changes mtimes, owners and
 * permission bits that the image must not see (0600 vs 0644, 0700 vs 0755).
 */
async function writeTree(root: string, variant: 0 | 1): Promise<void> {
  await mkdir(join(root, 'data/conf'), { recursive: true });
  await mkdir(join(root, 'data/www/img'), { recursive: true });
  await mkdir(join(root, 'data/www/empty'), { recursive: true });
  await writeFile(join(root, 'hello.nabla'), pseudoRandomBytes(300_000, 7));
  await chmod(join(root, 'hello.nabla'), variant ? 0o700 : 0o755);
  await writeFile(join(root, 'data/conf/redis.conf'), 'port 6379\nbind 0.0.0.0\n');
  await chmod(join(root, 'data/conf/redis.conf'), variant ? 0o600 : 0o644);
  await writeFile(join(root, 'data/www/index.html'), '<h1>hello</h1>\n');
  await writeFile(join(root, 'data/www/img/logo.svg'), '<svg/>\n');
  await symlink('index.html', join(root, 'data/www/home.html'));
  await symlink('../index.html', join(root, 'data/www/img/up.html'));
  const when = variant ? new Date('2031-01-02T03:04:05Z') : new Date('2001-05-06T07:08:09Z');
  for (const p of [
    'hello.nabla',
    'data/conf/redis.conf',
    'data/www/index.html',
    'data/www/img/logo.svg',
    'data/www',
    'data',
  ]) {
    await utimes(join(root, p), when, when);
    if (variant) await chown(join(root, p), 1234, 5678);
  }
}

function inputFor(root: string): AssembleInput {
  const labels = imageLabels({
    title: 'lkl-nabla-redis-base',
    version: '5.0.4',
    tender: 'spt',
    solo5SptAbi: 1,
    commits: { solo5: 'b326416aca06b8b5f58dae2833889e494b436717' },
    recipe: 'redis',
  });
  return {
    files: [
      { hostPath: join(root, 'hello.nabla'), imagePath: '/redis.nabla' },
      { hostPath: join(root, 'data/conf'), imagePath: '/conf' },
      { hostPath: join(root, 'data/www'), imagePath: '/srv/www' },
      { content: '{"sbom":true}\n', imagePath: '/sbom.spdx.json' },
    ],
    config: {
      entrypoint: ['/redis.nabla'],
      cmd: ['/conf/redis.conf'],
      env: { ZED: 'last-but-first', RUMP_VERBOSE: '1', LKL_BOOT_CMDLINE: 'mem=255M virtio-pci.force_legacy=1' },
      labels,
      workdir: '/',
      exposedPorts: ['6379', '53/udp'],
    },
    created: CREATED,
  };
}

/** Lists a layer blob's tar headers, in order. */
async function layerHeaders(layoutDir: string, digest: string, gzip: boolean) {
  const headers: tar.Header[] = [];
  const extract = tar.extract();
  const done = pipeline([
    createReadStream(blobPath(layoutDir, digest)),
    ...(gzip ? [createGunzip()] : []),
    extract as unknown as NodeJS.WritableStream,
  ]);
  for await (const entry of extract) {
    headers.push(entry.header);
    entry.resume();
  }
  await done;
  return headers;
}

describe('assembleImage', () => {
  it('gives identical digests for the same tree copied with different mtimes, owners and modes', async () => {
    const tmp = await tempDir();
    await writeTree(join(tmp, 'a'), 0);
    await writeTree(join(tmp, 'b'), 1);
    const a = await assembleImage(inputFor(join(tmp, 'a')), join(tmp, 'out-a'));
    const b = await assembleImage(inputFor(join(tmp, 'b')), join(tmp, 'out-b'));
    expect(b.manifestDigest).toBe(a.manifestDigest);
    expect(b.configDigest).toBe(a.configDigest);
    expect(b.layerDigests).toEqual(a.layerDigests);
    expect(a.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // Assembling again over an existing layout replaces it and gives the same result.
    const again = await assembleImage(inputFor(join(tmp, 'a')), join(tmp, 'out-a'));
    expect(again.manifestDigest).toBe(a.manifestDigest);
    expect((await readdir(tmp)).sort()).toEqual(['a', 'b', 'out-a', 'out-b']);
    // Uncompressed layers are deterministic too, and their digest is the gzip layer's diff_id.
    const none = await assembleImage({ ...inputFor(join(tmp, 'b')), compression: 'none' }, join(tmp, 'out-none'));
    expect(none.layerDigests).toEqual(a.diffIds);
    expect(none.sizes.layers[0]).toBe(a.sizes.uncompressedLayers[0]);
    expect(a.sizes.layers[0]).toBeLessThan(a.sizes.uncompressedLayers[0] ?? 0);
  });

  it('entries are in UTF-8 byte order, also where JavaScript string order differs (astral characters)', async () => {
    const tmp = await tempDir();
    const names = ['a', 'a-b', 'Z', 'é', '\uff01', '\u{1f600}', '\u{1f600}x', '~'];
    await mkdir(join(tmp, 'tree', 'a'), { recursive: true });
    for (const n of names.filter((n) => n !== 'a')) await writeFile(join(tmp, 'tree', n), n);
    await writeFile(join(tmp, 'tree', 'a', 'b'), 'b');
    const got = (await collectEntries([{ hostPath: join(tmp, 'tree'), imagePath: '/' }])).map((e) => e.name);
    const utf8 = (x: string, y: string) => Buffer.compare(Buffer.from(x), Buffer.from(y));
    expect(got).toEqual([...names, 'a/b'].sort(utf8));
    // U+FF01 (3 UTF-8 bytes, EF BC 81) before U+1F600 (F0 9F 98 80), though its UTF-16 unit FF01 > D83D.
    expect(got.indexOf('\uff01')).toBeLessThan(got.indexOf('\u{1f600}'));
    expect(got.slice(0, 4)).toEqual(['Z', 'a', 'a-b', 'a/b']);
  });

  it('writes a layout with sorted, normalised tar entries, a complete config and Docker manifest.json', async () => {
    const tmp = await tempDir();
    await writeTree(join(tmp, 'tree'), 1);
    const out = join(tmp, 'layout');
    const r = await assembleImage(inputFor(join(tmp, 'tree')), out);
    expect((await readdir(out)).sort()).toEqual(['blobs', 'index.json', 'manifest.json', 'oci-layout']);
    expect(JSON.parse(await readFile(join(out, 'oci-layout'), 'utf8'))).toEqual({ imageLayoutVersion: '1.0.0' });

    const image = await readLayout(out);
    expect(image.manifestDigest).toBe(r.manifestDigest);
    expect(image.manifest.mediaType).toBe(MediaType.ociManifest);
    expect(image.manifest.layers[0]?.mediaType).toBe(MediaType.ociLayerGzip);
    expect(image.config.architecture).toBe('amd64');
    expect(image.config.os).toBe('linux');
    expect(image.config.created).toBe('2020-04-20T12:00:00.000Z');
    expect(image.config.rootfs.diff_ids).toEqual(r.diffIds);
    expect(image.config.history).toEqual([
      {
        created: '2020-04-20T12:00:00.000Z',
        created_by: 'nabla-build: COPY /redis.nabla /conf /srv/www /sbom.spdx.json',
      },
    ]);
    expect(image.config.config).toEqual({
      Entrypoint: ['/redis.nabla'],
      Cmd: ['/conf/redis.conf'],
      Env: ['ZED=last-but-first', 'RUMP_VERBOSE=1', 'LKL_BOOT_CMDLINE=mem=255M virtio-pci.force_legacy=1'],
      Labels: expect.objectContaining({ 'dev.nabla-build.tender': 'spt', 'dev.nabla-build.solo5.spt-abi': '1' }),
      WorkingDir: '/',
      ExposedPorts: { '6379/tcp': {}, '53/udp': {} },
    });
    expect(JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'))).toEqual([
      {
        Config: `blobs/sha256/${r.configDigest.slice(7)}`,
        Layers: [`blobs/sha256/${r.layerDigests[0]?.slice(7)}`],
        RepoTags: null,
      },
    ]);

    const headers = await layerHeaders(out, r.layerDigests[0] ?? '', true);
    expect(
      headers.map((h) => `${h.type} ${h.name} ${h.mode.toString(8)}${h.linkname ? ` -> ${h.linkname}` : ''}`),
    ).toEqual([
      'directory conf/ 755',
      'file conf/redis.conf 644',
      'file redis.nabla 755',
      'file sbom.spdx.json 644',
      'directory srv/ 755',
      'directory srv/www/ 755',
      'directory srv/www/empty/ 755',
      'symlink srv/www/home.html 777 -> index.html',
      'directory srv/www/img/ 755',
      'file srv/www/img/logo.svg 644',
      'symlink srv/www/img/up.html 777 -> ../index.html',
      'file srv/www/index.html 644',
    ]);
    for (const h of headers) {
      expect([h.uid, h.gid, h.uname, h.gname, h.mtime.toISOString()]).toEqual([0, 0, '', '', CREATED.toISOString()]);
    }
  });

  it('round-trips through extractRootfs', async () => {
    const tmp = await tempDir();
    await writeTree(join(tmp, 'tree'), 0);
    const layout = join(tmp, 'layout');
    await assembleImage(inputFor(join(tmp, 'tree')), layout);
    const rootfs = join(tmp, 'rootfs');
    const r = await extractRootfs(layout, rootfs);
    expect(r.entries).toBe(12);
    expect(await readFile(join(rootfs, 'redis.nabla'))).toEqual(await readFile(join(tmp, 'tree/hello.nabla')));
    expect((await stat(join(rootfs, 'redis.nabla'))).mode & 0o777).toBe(0o755);
    expect((await stat(join(rootfs, 'conf/redis.conf'))).mode & 0o777).toBe(0o644);
    expect(await readlink(join(rootfs, 'srv/www/img/up.html'))).toBe('../index.html');
    expect((await lstat(join(rootfs, 'srv/www/empty'))).isDirectory()).toBe(true);
    expect((await stat(join(rootfs, 'sbom.spdx.json'))).mtime.toISOString()).toBe(CREATED.toISOString());
  });

  it('refuses bad inputs with errors that name the path', async () => {
    const tmp = await tempDir();
    await writeTree(join(tmp, 'tree'), 0);
    // /srv/www/img/ is three levels deep: the fourth `..` leaves the image root.
    await symlink('../../../../etc/passwd', join(tmp, 'tree/data/www/img/escape'));
    const base = inputFor(join(tmp, 'tree'));
    const escaping = assembleImage(base, join(tmp, 'out'));
    await expect(escaping).rejects.toBeInstanceOf(BuildError);
    await expect(escaping).rejects.toMatchObject({
      code: 'image.symlink-escape',
      message: expect.stringContaining('/srv/www/img/escape'),
    });
    // A failed assembly leaves neither the layout nor its temporary directory behind.
    expect((await readdir(tmp)).sort()).toEqual(['tree']);

    const ok = { ...base, files: base.files.filter((f) => !('hostPath' in f) || !f.hostPath.endsWith('www')) };
    await expect(
      assembleImage({ ...ok, files: [...ok.files, { content: 'x', imagePath: '/redis.nabla' }] }, join(tmp, 'o')),
    ).rejects.toMatchObject({
      code: 'image.duplicate-path',
    });
    await expect(
      assembleImage({ ...ok, files: [{ content: 'x', imagePath: '/a/../etc' }] }, join(tmp, 'o')),
    ).rejects.toBeInstanceOf(UsageError);
    await expect(
      assembleImage(
        { ...ok, files: [...ok.files, { content: 'x', imagePath: '/conf/redis.conf/inner' }] },
        join(tmp, 'o'),
      ),
    ).rejects.toMatchObject({ code: 'image.path-conflict' });
    // Either order of a file and an input inside it: only the inputs' own paths are checked for parents.
    for (const files of [
      [
        { content: 'x', imagePath: '/zz' },
        { content: 'y', imagePath: '/zz/inner' },
      ],
      [
        { content: 'y', imagePath: '/zz/inner' },
        { content: 'x', imagePath: '/zz' },
      ],
    ])
      await expect(assembleImage({ ...ok, files: [...ok.files, ...files] }, join(tmp, 'o'))).rejects.toMatchObject({
        code: 'image.path-conflict',
      });
    await expect(
      assembleImage({ ...ok, config: { ...ok.config, env: { 'A=B': 'x' } } }, join(tmp, 'o')),
    ).rejects.toMatchObject({
      code: 'image.bad-env',
    });
    await expect(
      assembleImage({ ...ok, config: { ...ok.config, exposedPorts: ['70000'] } }, join(tmp, 'o')),
    ).rejects.toMatchObject({
      code: 'image.bad-port',
    });
    await expect(
      assembleImage({ ...ok, files: [{ hostPath: join(tmp, 'missing'), imagePath: '/x' }] }, join(tmp, 'o')),
    ).rejects.toMatchObject({ code: 'image.input-missing', where: join(tmp, 'missing') });
  });

  it('makes a deterministic docker-archive tar of the layout', async () => {
    const tmp = await tempDir();
    await writeTree(join(tmp, 'tree'), 0);
    const layout = join(tmp, 'layout');
    const r = await assembleImage(inputFor(join(tmp, 'tree')), layout);
    const hashOf = async (tags: string[]) => {
      const h = createHash('sha256');
      const names: string[] = [];
      const extract = tar.extract();
      const reading = (async () => {
        for await (const e of extract) {
          names.push(e.header.name);
          if (e.header.name === 'manifest.json') {
            const chunks: Buffer[] = [];
            for await (const c of e) chunks.push(c as Buffer);
            expect(JSON.parse(Buffer.concat(chunks).toString()).at(0).RepoTags).toEqual(tags);
          } else e.resume();
        }
      })();
      const s = layoutToTarStream(layout, tags);
      s.on('data', (c: Buffer) => h.update(c));
      await pipeline(s, extract as unknown as NodeJS.WritableStream);
      await reading;
      return { hash: h.digest('hex'), names };
    };
    const one = await hashOf(['example.com/nabla/redis:5.0.4']);
    const two = await hashOf(['example.com/nabla/redis:5.0.4']);
    expect(two.hash).toBe(one.hash);
    expect(one.names).toEqual([
      'blobs/',
      'blobs/sha256/',
      ...[r.configDigest, r.layerDigests[0], r.manifestDigest].map((d) => `blobs/sha256/${d?.slice(7)}`).sort(),
      'index.json',
      'manifest.json',
      'oci-layout',
    ]);
    expect(() => layoutToTarStream(layout, ['Bad/Upper:tag'])).toThrow(UsageError);
  });
});

describe('independent clients read the layout', () => {
  it('skopeo inspect oci:DIR shows the config, labels and layer', async ({ skip }) => {
    if (!(await haveTool('skopeo'))) skip('skopeo is not installed');
    const tmp = await tempDir();
    await writeTree(join(tmp, 'tree'), 0);
    const layout = join(tmp, 'layout');
    const r = await assembleImage(inputFor(join(tmp, 'tree')), layout);
    const { stdout } = await execFileP('skopeo', ['inspect', `oci:${layout}:latest`]);
    const info = JSON.parse(stdout);
    expect(info.Digest).toBe(r.manifestDigest);
    expect(info.Architecture).toBe('amd64');
    expect(info.Os).toBe('linux');
    expect(info.Layers).toEqual(r.layerDigests);
    expect(info.Labels['dev.nabla-build.recipe']).toBe('redis');
    expect(info.Env).toEqual([
      'ZED=last-but-first',
      'RUMP_VERBOSE=1',
      'LKL_BOOT_CMDLINE=mem=255M virtio-pci.force_legacy=1',
    ]);
    const { stdout: cfg } = await execFileP('skopeo', ['inspect', '--config', `oci:${layout}`]);
    expect(JSON.parse(cfg).config.Entrypoint).toEqual(['/redis.nabla']);
  });

  it('umoci unpack --rootless gives the same rootfs and an OCI runtime config', async ({ skip }) => {
    if (!(await haveTool('umoci', ['--version']))) skip('umoci is not installed');
    const tmp = await tempDir();
    await writeTree(join(tmp, 'tree'), 0);
    for (const compression of ['gzip', 'none'] as const) {
      const layout = join(tmp, `layout-${compression}`);
      await assembleImage({ ...inputFor(join(tmp, 'tree')), compression }, layout);
      const bundle = join(tmp, `bundle-${compression}`);
      await execFileP('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle]);
      const rootfs = join(bundle, 'rootfs');
      expect(await readFile(join(rootfs, 'redis.nabla'))).toEqual(await readFile(join(tmp, 'tree/hello.nabla')));
      expect(await readFile(join(rootfs, 'conf/redis.conf'), 'utf8')).toBe('port 6379\nbind 0.0.0.0\n');
      expect(await readlink(join(rootfs, 'srv/www/home.html'))).toBe('index.html');
      const runtime = JSON.parse(await readFile(join(bundle, 'config.json'), 'utf8'));
      expect(runtime.process.args).toEqual(['/redis.nabla', '/conf/redis.conf']);
      expect(runtime.process.env).toEqual(expect.arrayContaining(['RUMP_VERBOSE=1']));
    }
  });
});

describe('sbom', () => {
  it('builds a deterministic SPDX 2.3 document the image can carry', async () => {
    const components = [
      {
        name: 'solo5',
        version: 'v0.6.4-2-gb326416',
        url: 'https://github.com/Solo5/solo5',
        commit: 'b326416aca06b8b5f58dae2833889e494b436717',
        license: 'ISC',
      },
      {
        name: 'redis',
        version: '5.0.4',
        url: 'http://download.redis.io/releases/redis-5.0.4.tar.gz',
        sha256: 'a'.repeat(64),
        license: 'BSD-3-Clause',
      },
    ];
    const one = sbom(components, { name: 'lkl-nabla-redis-base', version: '5.0.4', created: CREATED });
    const two = sbom(components, { name: 'lkl-nabla-redis-base', version: '5.0.4', created: CREATED });
    expect(two.json).toBe(one.json);
    expect(one.digest).toBe(`sha256:${createHash('sha256').update(one.json).digest('hex')}`);
    const doc = JSON.parse(one.json);
    expect(doc.spdxVersion).toBe('SPDX-2.3');
    expect(doc.creationInfo.created).toBe('2020-04-20T12:00:00Z');
    expect(doc.packages.map((p: { SPDXID: string }) => p.SPDXID)).toEqual([
      'SPDXRef-Image',
      'SPDXRef-Package-solo5',
      'SPDXRef-Package-redis',
    ]);
    expect(doc.packages[1].downloadLocation).toBe(
      'git+https://github.com/Solo5/solo5@b326416aca06b8b5f58dae2833889e494b436717',
    );
    expect(doc.packages[2].checksums).toEqual([{ algorithm: 'SHA256', checksumValue: 'a'.repeat(64) }]);
    expect(doc.relationships).toHaveLength(3);
    expect(() => sbom([{ name: 'x', commit: 'abc' }], { name: 'i', created: CREATED })).toThrow(UsageError);
    const labels = imageLabels({ sbomDigest: one.digest });
    expect(labels['dev.nabla-build.sbom.digest']).toBe(one.digest);
  });
});
