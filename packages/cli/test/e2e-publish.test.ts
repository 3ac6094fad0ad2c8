import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { requireDocker, type TestServices } from '@nabla-build/testing';
import { execa } from 'execa';
import { beforeAll, describe, expect, it } from 'vitest';
import { useFixtureWorld } from './fixture-env.js';
import { repoRoot } from './helpers.js';

const world = useFixtureWorld();

/** Files under dir (gzip blobs decompressed) whose bytes contain any of the needles. */
function filesContaining(dir: string, needles: string[]): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        let data = readFileSync(p);
        if (data[0] === 0x1f && data[1] === 0x8b) data = gunzipSync(data);
        if (needles.some((n) => data.includes(n))) hits.push(p);
      }
    }
  };
  walk(dir);
  return hits;
}

const skopeo = (args: string[]) => execa('skopeo', args, { reject: false });
const unique = () => `e2e${process.pid}${Date.now().toString(36)}`;

describe('publishing', () => {
  let services: TestServices;
  beforeAll(() => {
    services = requireDocker();
  });

  it('python3 --push prints a digest reference that skopeo shows with labels and entrypoint; a downstream Dockerfile builds FROM it', async () => {
    const ns = unique();
    const cache = world.newCache();
    const r = await world.run(['python3', '--push', '--registry', services.registry, '--namespace', ns], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    const ref = r.stdout.trim();
    expect(ref).toMatch(new RegExp(`^${services.registry}/${ns}/lkl-nabla-python3-base@sha256:[0-9a-f]{64}$`));
    const inspect = await skopeo(['inspect', '--tls-verify=false', `docker://${ref}`]);
    expect(inspect.exitCode, inspect.stderr).toBe(0);
    const info = JSON.parse(inspect.stdout) as { Labels: Record<string, string>; RepoTags: string[]; Digest: string };
    expect(info.Digest).toBe(ref.split('@')[1]);
    expect(info.RepoTags).toEqual(expect.arrayContaining(['3.5.2', '3.5', '3', 'latest']));
    expect(info.Labels['org.opencontainers.image.version']).toBe('3.5.2');
    expect(info.Labels['dev.nabla-build.tender']).toBe('spt');
    expect(info.Labels['dev.nabla-build.solo5.spt-abi']).toBe('1');
    expect(info.Labels['dev.nabla-build.commit.frankenlibc']).toBe(world.upstreams.repos.frankenlibc.rev);
    const config = JSON.parse(
      (await skopeo(['inspect', '--tls-verify=false', '--config', `docker://${ref}`])).stdout,
    ) as { config: { Entrypoint: string[]; Env: string[] } };
    expect(config.config.Entrypoint).toEqual(['/python3.nabla']);
    expect(config.config.Env).toEqual(['PYTHONHASHSEED=1', 'PYTHONHOME=/usr/local', 'HOME=/']);

    // The example downstream Dockerfile, FROM the pushed base pinned by digest.
    const ctx = mkdtempSync(join(tmpdir(), 'nb-downstream-'));
    cpSync(join(repoRoot, 'images', 'downstream', 'python3'), ctx, { recursive: true });
    const env = { DOCKER_HOST: services.dockerHost, DOCKER_BUILDKIT: '0' };
    const tag = `${ns}/app:1`;
    const build = await execa('docker', ['build', '--build-arg', `BASE=${ref}`, '-t', tag, ctx], {
      env,
      reject: false,
    });
    expect(build.exitCode, build.stderr).toBe(0);
    const app = JSON.parse((await execa('docker', ['inspect', tag], { env })).stdout)[0] as {
      Config: { Entrypoint: string[]; Env: string[]; Cmd: string[] };
    };
    expect(app.Config.Entrypoint).toEqual(['/python3.nabla']);
    expect(app.Config.Env).toEqual(expect.arrayContaining(['PYTHONHOME=/usr/local', 'PYTHONHASHSEED=1']));
    expect(app.Config.Cmd).toEqual(['/app/app.py']);

    // A re-push uploads no blob bytes (reported in the JSON summary).
    const again = await world.run(['python3', '--push', '--registry', services.registry, '--namespace', ns, '--json'], {
      cache,
    });
    expect(again.exitCode, again.stderr).toBe(0);
    const summary = JSON.parse(again.stdout) as { published: { kind: string; bytesUploaded?: number }[] };
    expect(summary.published.find((p) => p.kind === 'push')?.bytesUploaded).toBe(0);
  });

  it('a failing smoke test blocks the push and says why; nothing is tagged', async () => {
    const ns = unique();
    const root = mkdtempSync(join(tmpdir(), 'nb-project-'));
    cpSync(join(repoRoot, 'recipes'), join(root, 'recipes'), { recursive: true });
    cpSync(join(repoRoot, 'patches'), join(root, 'patches'), { recursive: true });
    const hello = join(root, 'recipes', 'hello.yaml');
    writeFileSync(
      hello,
      readFileSync(hello, 'utf8').replace('expect: I beheld the wretch', 'expect: a line hello never prints'),
    );
    const r = await world.run(
      ['hello', '--push', '--registry', services.registry, '--namespace', ns, '--recipes', join(root, 'recipes')],
      { cache: world.newCache() },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/smoke test of hello failed, so it was not pushed/);
    expect(r.stderr).toContain('hint: nabla-build test hello');
    const tags = await skopeo([
      'list-tags',
      '--tls-verify=false',
      `docker://${services.registry}/${ns}/lkl-nabla-hello-base`,
    ]);
    expect(tags.exitCode).not.toBe(0);
  });

  it('the auth registry takes credentials from the environment; a wrong password is a clear 401 with nothing tagged', async () => {
    const ns = unique();
    const cache = world.newCache();
    const args = ['hello', '--push', '--registry', services.authRegistry, '--namespace', ns, '--no-test'];
    const bad = await world.run(args, {
      cache,
      env: { NABLA_REGISTRY_USER: services.authUser, NABLA_REGISTRY_PASSWORD: 'wrong-password' },
    });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toMatch(/401/);
    expect(bad.stderr).toContain(`docker login ${services.authRegistry}`);
    expect(bad.stderr).not.toContain('wrong-password');
    const creds = `${services.authUser}:${services.authPassword}`;
    expect(
      (
        await skopeo([
          'list-tags',
          '--tls-verify=false',
          '--creds',
          creds,
          `docker://${services.authRegistry}/${ns}/lkl-nabla-hello-base`,
        ])
      ).exitCode,
    ).not.toBe(0);
    const good = await world.run(args, {
      cache,
      env: { NABLA_REGISTRY_USER: services.authUser, NABLA_REGISTRY_PASSWORD: services.authPassword },
    });
    expect(good.exitCode, good.stderr).toBe(0);
    expect(good.stderr + good.stdout).not.toContain(services.authPassword);
    const listed = await skopeo([
      'list-tags',
      '--tls-verify=false',
      '--creds',
      creds,
      `docker://${services.authRegistry}/${ns}/lkl-nabla-hello-base`,
    ]);
    expect(JSON.parse(listed.stdout).Tags).toContain('1.0.0');
    // Credentials never reach logs, cache entries, labels or layers (blobs are gzip: check them unpacked too).
    expect(filesContaining(cache, [services.authPassword, 'wrong-password'])).toEqual([]);
  });

  it('--output oci:<dir> and tar:<file> write images an independent client reads', async () => {
    const out = mkdtempSync(join(tmpdir(), 'nb-out-'));
    const r = await world.run(
      ['redis', '--output', `oci:${join(out, 'oci')}`, '--output', `tar:${join(out, 'redis.tar')}`],
      { cache: world.newCache() },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(`oci:${join(out, 'oci')}`);
    // The layout names the image under every tag (`oci:<dir>:<tag>`), not only `latest`.
    const oci = JSON.parse((await skopeo(['inspect', '--config', `oci:${join(out, 'oci')}:latest`])).stdout) as {
      config: { Entrypoint: string[] };
    };
    expect(oci.config.Entrypoint).toEqual(['/redis.nabla']);
    const index = JSON.parse(readFileSync(join(out, 'oci', 'index.json'), 'utf8')) as {
      manifests: { annotations: Record<string, string> }[];
    };
    const names = index.manifests.map((m) => m.annotations['org.opencontainers.image.ref.name']);
    expect(names).toContain('latest');
    expect(names.length).toBeGreaterThan(2); // version tags and the build tag too
    const versioned = await skopeo(['inspect', `oci:${join(out, 'oci')}:${names[0]}`]);
    expect(versioned.exitCode, versioned.stderr).toBe(0);
    const tar = await skopeo(['inspect', '--config', `docker-archive:${join(out, 'redis.tar')}`]);
    expect(tar.exitCode, tar.stderr).toBe(0);
  });
});
