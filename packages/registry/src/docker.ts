import { layoutToTarStream, readLayout } from '@nabla-build/image';
import { BuildError } from '@nabla-build/model';
import type Dockerode from 'dockerode';

/**
 * Loads the layout into a Docker engine (`docker load` of the layout as a docker-archive), tagging it
 * `repoTags` (`name:tag`), and returns the image id (`sha256:<config digest>`, what `docker images
 * --no-trunc` shows). Docker's progress stream is scanned for `errorDetail` (the API answers 200 even when
 * the load failed), then the image is inspected to confirm its id.
 */
export async function loadIntoDocker(
  layoutDir: string,
  repoTags: string[],
  opts: { docker: Dockerode },
): Promise<string> {
  const imageId = `sha256:${(await readLayout(layoutDir)).configDigest.slice(7)}`;
  const where = `docker load of ${layoutDir}`;
  let lines: string[];
  try {
    const res = (await opts.docker.loadImage(layoutToTarStream(layoutDir, repoTags), {
      quiet: true,
    })) as NodeJS.ReadableStream;
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
    lines = Buffer.concat(chunks).toString('utf8').split(/\r?\n/).filter(Boolean);
  } catch (cause) {
    throw new BuildError('docker.load-failed', `${where} failed: ${(cause as Error).message}`, {
      where,
      cause,
      hint: 'check that the Docker engine is running (`docker info`) and DOCKER_HOST points at it',
    });
  }
  for (const line of lines) {
    let msg: { error?: string; errorDetail?: { message?: string } };
    try {
      msg = JSON.parse(line);
    } catch {
      continue;
    }
    if (msg.errorDetail || msg.error) {
      throw new BuildError('docker.load-failed', `${where} failed: ${msg.errorDetail?.message ?? msg.error}`, {
        where,
      });
    }
  }
  const inspected = await opts.docker
    .getImage(repoTags[0] ?? imageId)
    .inspect()
    .catch((cause: unknown) => {
      throw new BuildError(
        'docker.load-failed',
        `${where}: the engine does not show ${repoTags[0] ?? imageId} afterwards`,
        { where, cause },
      );
    });
  if (inspected.Id !== imageId) {
    throw new BuildError('docker.load-failed', `${where}: ${repoTags[0]} is ${inspected.Id}, expected ${imageId}`, {
      where,
    });
  }
  return imageId;
}
