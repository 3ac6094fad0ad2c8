import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { requireDocker } from '@nabla-build/testing';
import { describe, expect, it } from 'vitest';
import {
  assembleImage,
  extractRootfs,
  GZIP_BLOCK,
  type LayerCompression,
  layoutToTarStream,
  SINGLE_STREAM_MAX,
} from '../src/index.js';
import { execFileP, haveTool, pseudoRandomBytes, tempDir } from './helpers.js';

/** A layer larger than SINGLE_STREAM_MAX (so gzip is written as parallel blocks), with small files around it. */
async function image(tmp: string, compression: LayerCompression) {
  const tree = join(tmp, 'tree');
  await mkdir(join(tree, 'lib'), { recursive: true });
  const big = pseudoRandomBytes(6 * GZIP_BLOCK + 777, 5);
  await writeFile(join(tree, 'app.nabla'), big, { mode: 0o755 });
  for (let i = 0; i < 50; i++) await writeFile(join(tree, 'lib', `m${i}.py`), `print(${i})\n`.repeat(i + 1));
  const layout = join(tmp, `layout-${compression}`);
  const r = await assembleImage(
    {
      files: [{ hostPath: tree, imagePath: '/' }],
      config: { entrypoint: ['/app.nabla'], cmd: [], env: {}, labels: {}, exposedPorts: [] },
      created: new Date('2020-04-20T00:00:00Z'),
      compression,
    },
    layout,
  );
  expect(r.sizes.uncompressedLayers[0]).toBeGreaterThan(SINGLE_STREAM_MAX);
  return { layout, r, big };
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('independent readers of multi-block layers', () => {
  it('gzip: umoci unpack, skopeo copy --dest-decompress, docker load and extractRootfs read it', async (ctx) => {
    const services = requireDocker(ctx);
    const tmp = await tempDir();
    const { layout, r, big } = await image(tmp, 'gzip');
    expect((await extractRootfs(layout, join(tmp, 'rootfs'))).entries).toBe(r.entries);
    expect(sha(await readFile(join(tmp, 'rootfs', 'app.nabla')))).toBe(sha(big));

    if (await haveTool('umoci', ['--version'])) {
      await execFileP('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, join(tmp, 'bundle')]);
      expect(sha(await readFile(join(tmp, 'bundle', 'rootfs', 'app.nabla')))).toBe(sha(big));
    } else ctx.skip('umoci is not installed');

    await decompressedBySkopeo(tmp, layout, r.diffIds[0] as string);
    await loadedByDocker(services.dockerHost, tmp, layout, r.diffIds[0] as string, 'gzip');
  });

  it('zstd: extractRootfs and skopeo read it; Docker loads it from 23.0 on, 20.10 refuses it', async (ctx) => {
    const services = requireDocker(ctx);
    if (!(await haveTool('zstd'))) ctx.skip('zstd is not installed');
    const tmp = await tempDir();
    const { layout, r, big } = await image(tmp, 'zstd');
    expect((await extractRootfs(layout, join(tmp, 'rootfs'))).entries).toBe(r.entries);
    expect(sha(await readFile(join(tmp, 'rootfs', 'app.nabla')))).toBe(sha(big));
    await decompressedBySkopeo(tmp, layout, r.diffIds[0] as string);
    const env = { ...process.env, DOCKER_HOST: services.dockerHost };
    const version = (await execFileP('docker', ['version', '--format', '{{.Server.Version}}'], { env })).stdout.trim();
    if (Number(version.split('.')[0]) >= 23) {
      await loadedByDocker(services.dockerHost, tmp, layout, r.diffIds[0] as string, 'zstd');
    } else {
      // Docker 20.10 (Debian 12's docker.io) reads the zstd blob as a plain tar: why gzip stays the default.
      await expect(loadedByDocker(services.dockerHost, tmp, layout, r.diffIds[0] as string, 'zstd')).rejects.toThrow(
        /invalid tar header/,
      );
    }
  });
});

async function decompressedBySkopeo(tmp: string, layout: string, diffId: string): Promise<void> {
  if (!(await haveTool('skopeo'))) return;
  const out = join(tmp, `skopeo-${Math.random().toString(36).slice(2)}`);
  await execFileP('skopeo', ['copy', '-q', '--dest-decompress', `oci:${layout}:latest`, `dir:${out}`]);
  // dir: names each blob by its digest; decompressed, the layer's is the diff_id.
  expect(await readdir(out)).toContain(diffId.slice('sha256:'.length));
  expect(`sha256:${sha(await readFile(join(out, diffId.slice('sha256:'.length))))}`).toBe(diffId);
}

async function loadedByDocker(dockerHost: string, tmp: string, layout: string, diffId: string, name: string) {
  const env = { ...process.env, DOCKER_HOST: dockerHost };
  const tag = `nabla-readers-${name}-${process.pid}:test`;
  const file = join(tmp, `${name}.tar`);
  await pipeline(layoutToTarStream(layout, [tag]), createWriteStream(file));
  try {
    await execFileP('docker', ['load', '-i', file], { env });
    const { stdout } = await execFileP('docker', ['image', 'inspect', '--format', '{{json .RootFS.Layers}}', tag], {
      env,
    });
    expect(JSON.parse(stdout)).toEqual([diffId]);
  } finally {
    await execFileP('docker', ['rmi', '-f', tag], { env }).catch(() => undefined);
  }
}
