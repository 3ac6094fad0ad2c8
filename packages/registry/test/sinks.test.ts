import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { MediaType, readLayout, writeJsonBlob, writeLayoutFiles } from '@nabla-build/image';
import { BuildError } from '@nabla-build/model';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadIntoDocker, writeOciDir, writeTarball } from '../src/index.js';
import { helloImage } from './fixtures.js';
import { execFileP, haveTool, services, withServices, tempDir } from './services.js';

describe('file sinks', () => {
  it('writeOciDir copies a clean layout skopeo reads; writeTarball is deterministic and atomic', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir, 'fixed-salt');
    const oci = join(dir, 'copy');
    expect(await writeOciDir(image.layoutDir, oci)).toEqual({ manifestDigest: image.manifestDigest });
    expect((await readdir(join(oci, 'blobs/sha256'))).length).toBe(3);
    const tarA = join(dir, 'out/a.tar');
    const tarB = join(dir, 'out/b.tar');
    await writeTarball(image.layoutDir, tarA, ['nabla/hello-base:0.1.0']);
    await writeTarball(oci, tarB, ['nabla/hello-base:0.1.0']);
    const sha = async (f: string) =>
      createHash('sha256')
        .update(await readFile(f))
        .digest('hex');
    expect(await sha(tarB)).toBe(await sha(tarA));
    expect((await readdir(join(dir, 'out'))).sort()).toEqual(['a.tar', 'b.tar']);
    if (!(await haveTool('skopeo'))) return;
    const { stdout } = await execFileP('skopeo', ['inspect', `oci:${oci}`]);
    expect(JSON.parse(stdout).Digest).toBe(image.manifestDigest);
    const { stdout: archived } = await execFileP('skopeo', ['inspect', '--config', `docker-archive:${tarA}`]);
    expect(JSON.parse(archived).config.Entrypoint).toEqual(['/hello.nabla']);
    const { stdout: asOci } = await execFileP('skopeo', ['inspect', `oci-archive:${tarA}`]);
    expect(JSON.parse(asOci).Digest).toBe(image.manifestDigest);
  });

  it('writeOciDir with tags names the image once per tag; each oci:<dir>:<tag> reads the same image', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir, 'tags-salt');
    const oci = join(dir, 'tagged');
    const tags = ['0.1.0', '0.1', '0', 'latest', '0.1.0-abc123'];
    await writeOciDir(image.layoutDir, oci, tags);
    const index = JSON.parse(await readFile(join(oci, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    expect(index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name'])).toEqual(tags);
    expect(new Set(index.manifests.map((m) => m.digest))).toEqual(new Set([image.manifestDigest]));
    expect((await readLayout(oci)).manifestDigest).toBe(image.manifestDigest);
    expect((await readLayout(oci, { refName: '0.1' })).manifestDigest).toBe(image.manifestDigest);
    if (!(await haveTool('skopeo'))) return;
    for (const t of tags) {
      const { stdout } = await execFileP('skopeo', ['inspect', `oci:${oci}:${t}`]);
      expect(JSON.parse(stdout).Digest, t).toBe(image.manifestDigest);
    }
  });
});

describe.runIf(withServices)('loadIntoDocker (real engine)', () => {
  let docker: Docker;
  beforeAll(() => {
    services();
    docker = new Docker();
  });

  it('loads the layout with dockerode and returns the image id; docker load -i takes writeTarball output', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir);
    const tag = `nabla-load-${process.pid}:test`;
    const imageId = await loadIntoDocker(image.layoutDir, [tag], { docker });
    expect(imageId).toBe(`sha256:${image.configDigest.slice(7)}`);
    const inspected = await docker.getImage(tag).inspect();
    expect(inspected.Config.Entrypoint).toEqual(['/hello.nabla']);
    expect(inspected.Config.Env).toEqual(['RUMP_VERBOSE=1']);
    expect(inspected.RootFS.Layers).toEqual(image.diffIds);
    await docker.getImage(tag).remove({ force: true });

    const file = join(dir, 'image.tar');
    const cliTag = `nabla-load-cli-${process.pid}:test`;
    await writeTarball(image.layoutDir, file, [cliTag]);
    const { stdout } = await execFileP('docker', ['load', '-i', file], { env: process.env });
    expect(stdout).toContain(`Loaded image: ${cliTag}`);
    await docker.getImage(cliTag).remove({ force: true });
  });

  it('reports a load the engine refuses (found in the progress stream) and an unreachable engine', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir);
    // Same layer, but a config whose diff_id does not match it: the engine answers 200 and then an errorDetail.
    const layout = await readLayout(image.layoutDir);
    const config = { ...layout.config, rootfs: { type: 'layers', diff_ids: [`sha256:${'0'.repeat(64)}`] } };
    const bad = join(dir, 'bad-layout');
    await writeOciDir(image.layoutDir, bad);
    const c = await writeJsonBlob(bad, MediaType.ociConfig, config);
    const manifest = { ...layout.manifest, config: c.descriptor };
    const m = await writeJsonBlob(bad, MediaType.ociManifest, manifest);
    await writeLayoutFiles(bad, m.descriptor, manifest);
    const err = await loadIntoDocker(bad, [`nabla-bad-${process.pid}:test`], { docker }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect(err).toMatchObject({
      code: 'docker.load-failed',
      message: expect.stringMatching(/^docker load of .*bad-layout failed: .+/),
    });

    await expect(
      loadIntoDocker(image.layoutDir, ['nabla/ok:tag'], { docker: new Docker({ socketPath: '/nonexistent.sock' }) }),
    ).rejects.toMatchObject({
      code: 'docker.load-failed',
      hint: expect.stringContaining('docker info'),
    });
  });
});
