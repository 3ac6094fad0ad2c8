import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import tar from 'tar-stream';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  dockerCredentials,
  pushImage,
  RegistryClient,
  RegistryError,
  staticCredentials,
  type PushEvent,
} from '../src/index.js';
import { helloImage } from './fixtures.js';
import { execFileP, haveTool, services, withServices, type TestServices, tempDir, uniqueRepo } from './services.js';

const suite = describe.runIf(withServices);

suite('pushImage against the real registry and engine', () => {
  let svc: TestServices;
  let docker: Docker;
  beforeAll(() => {
    svc = services();
    docker = new Docker();
  });
  const dockerEnv = () => ({ ...process.env, DOCKER_HOST: svc.dockerHost });

  it('pushes an image skopeo and docker pull read back, and a re-push uploads no blob bytes', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir);
    const repo = uniqueRepo('hello-base');
    const ref = `${svc.registry}/${repo}:0.1.0`;
    const events: PushEvent[] = [];
    const first = await pushImage(image.layoutDir, [ref, `${svc.registry}/${repo}:latest`], {
      onEvent: (e) => events.push(e),
    });
    expect(first.manifestDigest).toBe(image.manifestDigest);
    expect(first.references).toEqual([
      `${ref}@${image.manifestDigest}`,
      `${svc.registry}/${repo}:latest@${image.manifestDigest}`,
    ]);
    expect(first.stats).toMatchObject({ blobsUploaded: 2, blobsSkipped: 0, manifestsPut: 2, retries: 0 });
    expect(first.stats.bytesUploaded).toBe(image.sizes.config + (image.sizes.layers[0] ?? 0));
    expect(events.filter((e) => e.kind === 'tagged')).toHaveLength(2);

    expect(await haveTool('skopeo')).toBe(true);
    const { stdout } = await execFileP('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`]);
    const info = JSON.parse(stdout);
    expect(info.Digest).toBe(image.manifestDigest);
    expect(info.Labels).toMatchObject({
      'dev.nabla-build.tender': 'spt',
      'org.opencontainers.image.title': 'lkl-nabla-hello-base',
    });
    const { stdout: cfg } = await execFileP('skopeo', ['inspect', '--tls-verify=false', '--config', `docker://${ref}`]);
    expect(JSON.parse(cfg).config).toMatchObject({ Entrypoint: ['/hello.nabla'], Env: ['RUMP_VERBOSE=1'] });

    const again = await pushImage(image.layoutDir, [ref]);
    expect(again.manifestDigest).toBe(first.manifestDigest);
    expect(again.stats).toMatchObject({ bytesUploaded: 0, blobsUploaded: 0, blobsSkipped: 2, manifestsPut: 1 });

    await execFileP('docker', ['pull', ref], { env: dockerEnv() });
    const { stdout: inspected } = await execFileP('docker', ['image', 'inspect', ref], { env: dockerEnv() });
    const [pulled] = JSON.parse(inspected);
    expect(pulled.Id).toBe(`sha256:${image.configDigest.slice(7)}`);
    expect(pulled.RepoDigests).toContain(`${svc.registry}/${repo}@${image.manifestDigest}`);
    expect(pulled.Config.Entrypoint).toEqual(['/hello.nabla']);
    await execFileP('docker', ['rmi', ref, `${svc.registry}/${repo}:0.1.0`], { env: dockerEnv() }).catch(
      () => undefined,
    );
  });

  it('refuses references without a tag and digests that are not the image', async () => {
    const image = await helloImage(await tempDir());
    await expect(pushImage(image.layoutDir, [`${svc.registry}/${uniqueRepo('no-tag')}`])).rejects.toMatchObject({
      code: 'push.no-tag',
    });
    await expect(pushImage(image.layoutDir, [`${svc.registry}/x:1@sha256:${'0'.repeat(64)}`])).rejects.toMatchObject({
      code: 'push.digest-mismatch',
    });
    // Push by digest only: no tag is created, the manifest is addressable by its digest.
    const repo = uniqueRepo('by-digest');
    const r = await pushImage(image.layoutDir, [`${svc.registry}/${repo}@${image.manifestDigest}`]);
    expect(r.references).toEqual([`${svc.registry}/${repo}@${image.manifestDigest}`]);
    expect((await new RegistryClient({ registry: svc.registry }).getManifest(repo, image.manifestDigest))?.digest).toBe(
      image.manifestDigest,
    );
  });

  it('mounts blobs from a repository that has them instead of uploading', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir);
    const a = uniqueRepo('mount-src');
    const b = uniqueRepo('mount-dst');
    const c = uniqueRepo('mount-dst2');
    await pushImage(image.layoutDir, [`${svc.registry}/${a}:1`]);
    const mounted = await pushImage(image.layoutDir, [`${svc.registry}/${b}:1`], { mountFrom: [a] });
    expect(mounted.stats).toMatchObject({ blobsMounted: 2, blobsUploaded: 0, bytesUploaded: 0 });
    // Several repositories in one push: the first uploads, the second mounts from the first.
    const other = await helloImage(join(dir, 'other'));
    const two = await pushImage(other.layoutDir, [
      `${svc.registry}/${uniqueRepo('multi')}:1`,
      `${svc.registry}/${c}:1`,
    ]);
    expect(two.stats).toMatchObject({ blobsUploaded: 2, blobsSkipped: 0, blobsMounted: 2 });
    const client = new RegistryClient({ registry: svc.registry });
    expect((await client.getManifest(b, '1'))?.digest).toBe(image.manifestDigest);
  });

  it('serves as the FROM of a downstream docker build that inherits entrypoint, env and labels', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir);
    const repo = uniqueRepo('downstream-base');
    const base = `${svc.registry}/${repo}:1.0`;
    await pushImage(image.layoutDir, [base]);
    const pack = tar.pack();
    pack.entry({ name: 'Dockerfile' }, `FROM ${base}\nCOPY app.conf /app.conf\nENV APP=demo\nCMD ["/app.conf"]\n`);
    pack.entry({ name: 'app.conf' }, 'answer=42\n');
    pack.finalize();
    const tag = `nabla-downstream-${process.pid}:test`;
    const stream = await docker.buildImage(pack as unknown as NodeJS.ReadableStream, {
      t: tag,
      rm: true,
      forcerm: true,
    });
    const events = await new Promise<{ error?: string; errorDetail?: { message: string } }[]>((resolve, reject) =>
      docker.modem.followProgress(stream, (err: Error | null, out: unknown[]) =>
        err ? reject(err) : resolve(out as never),
      ),
    );
    const failed = events.find((e) => e.errorDetail || e.error);
    expect(failed, JSON.stringify(failed)).toBeUndefined();
    const built = await docker.getImage(tag).inspect();
    expect(built.Config.Entrypoint).toEqual(['/hello.nabla']);
    expect(built.Config.Cmd).toEqual(['/app.conf']);
    // The legacy builder adds a default PATH to images whose base has none.
    expect(built.Config.Env?.filter((e) => !e.startsWith('PATH='))).toEqual(['RUMP_VERBOSE=1', 'APP=demo']);
    expect(built.Config.Labels?.['dev.nabla-build.recipe']).toBe('hello');
    expect(built.RootFS.Layers?.[0]).toBe(image.diffIds[0]);
    await docker.getImage(tag).remove({ force: true });
    await docker
      .getImage(base)
      .remove({ force: true })
      .catch(() => undefined);
  });

  it('authenticates with credentials from $DOCKER_CONFIG/config.json', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir);
    const configDir = join(dir, 'docker-config');
    await mkdir(configDir);
    const auth = Buffer.from(`${svc.authUser}:${svc.authPassword}`).toString('base64');
    await writeFile(
      join(configDir, 'config.json'),
      JSON.stringify({ auths: { [`http://${svc.authRegistry}`]: { auth } } }),
    );
    const repo = uniqueRepo('auth-config');
    const result = await pushImage(image.layoutDir, [`${svc.authRegistry}/${repo}:1`], {
      credentials: dockerCredentials({ env: { DOCKER_CONFIG: configDir } }),
    });
    expect(result.stats.blobsUploaded).toBe(2);
    const { stdout } = await execFileP('skopeo', [
      'inspect',
      '--tls-verify=false',
      '--creds',
      `${svc.authUser}:${svc.authPassword}`,
      `docker://${svc.authRegistry}/${repo}:1`,
    ]);
    expect(JSON.parse(stdout).Digest).toBe(image.manifestDigest);
  });

  it('authenticates through a docker-credential helper named in credHelpers', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir);
    const bin = join(dir, 'bin');
    await mkdir(bin);
    const log = join(dir, 'helper.log');
    const helper = join(bin, 'docker-credential-nablatest');
    await writeFile(
      helper,
      [
        '#!/bin/sh',
        'read server',
        `echo "$1 $server" >> '${log}'`,
        `if [ "$1" = get ] && [ "$server" = '${svc.authRegistry}' ]; then`,
        `  printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\\n' "$server" '${svc.authUser}' '${svc.authPassword}'`,
        'else echo "credentials not found in native keychain"; exit 1; fi',
        '',
      ].join('\n'),
    );
    await chmod(helper, 0o755);
    const configDir = join(dir, 'docker-config');
    await mkdir(configDir);
    await writeFile(
      join(configDir, 'config.json'),
      JSON.stringify({ credHelpers: { [svc.authRegistry]: 'nablatest' } }),
    );
    const creds = dockerCredentials({ env: { DOCKER_CONFIG: configDir, PATH: `${bin}:${process.env.PATH}` } });
    const result = await pushImage(image.layoutDir, [`${svc.authRegistry}/${uniqueRepo('auth-helper')}:1`], {
      credentials: creds,
    });
    expect(result.references).toHaveLength(1);
    expect(await readFile(log, 'utf8')).toBe(`get ${svc.authRegistry}\n`);
    expect(await creds.get('other.example:5000')).toBeUndefined();
  });

  it('fails with a 401 RegistryError naming registry and repository, without the password, and tags nothing', async () => {
    const dir = await tempDir();
    const image = await helloImage(dir);
    const repo = uniqueRepo('auth-wrong');
    const wrong = 'not-the-password-7f3a9c';
    const err = await pushImage(image.layoutDir, [`${svc.authRegistry}/${repo}:1`], {
      credentials: staticCredentials(svc.authUser, wrong),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    const e = err as RegistryError;
    expect(e.status).toBe(401);
    expect(e.temporary).toBe(false);
    expect(e.code).toBe('registry.unauthorized');
    expect(e.hint).toBe(`docker login ${svc.authRegistry}`);
    expect(e.message).toContain(`${svc.authRegistry}/${repo}`);
    const everything = `${e.message} ${e.hint} ${JSON.stringify(e)} ${e.stack}`;
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(Buffer.from(`${svc.authUser}:${wrong}`).toString('base64'));
    // Anonymous: the same 401 and hint.
    await expect(pushImage(image.layoutDir, [`${svc.authRegistry}/${repo}:1`])).rejects.toMatchObject({ status: 401 });
    const client = new RegistryClient({
      registry: svc.authRegistry,
      credentials: staticCredentials(svc.authUser, svc.authPassword),
    });
    expect(await client.getManifest(repo, '1')).toBeUndefined();
  });
});
