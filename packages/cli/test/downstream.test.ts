import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireDocker } from '@nabla-build/testing';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { useFixtureWorld } from './fixture-env.js';
import { repoRoot } from './helpers.js';

const world = useFixtureWorld();

/** What each images/downstream/<base>/ example adds on top of its base. */
const EXAMPLES = {
  python3: { entrypoint: ['/python3.nabla'], cmd: ['/app/app.py'], file: ['/app/app.py', 'app.py'] },
  nginx: { entrypoint: ['/nginx.nabla'], cmd: null, file: ['/www/index.html', 'site/index.html'] },
  redis: { entrypoint: ['/redis.nabla'], cmd: ['/conf/app.conf'], file: ['/conf/app.conf', 'redis.conf'] },
} as const;

describe('images/downstream: one FROM example per base', () => {
  it('each example builds on its freshly built base, inheriting entrypoint, env and ports', async (ctx) => {
    const services = requireDocker(ctx);
    const env = { DOCKER_HOST: services.dockerHost, DOCKER_BUILDKIT: '0' };
    const cache = world.newCache();
    const r = await world.run(['python3', 'nginx', 'redis', '--load'], {
      cache,
      env: { DOCKER_HOST: services.dockerHost },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const refs = r.stdout.trim().split('\n');
    for (const [base, want] of Object.entries(EXAMPLES)) {
      const ref = refs.find((x) => x.startsWith(`lkl-nabla-${base}-base:`)) as string;
      expect(ref, base).toBeDefined();
      const dir = join(repoRoot, 'images', 'downstream', base);
      const tag = `nb-downstream-${base}:${Date.now()}`;
      const build = await execa('docker', ['build', '--build-arg', `BASE=${ref}`, '-t', tag, dir], {
        env,
        reject: false,
      });
      expect(build.exitCode, `${base}: ${build.stderr}`).toBe(0);
      const inspect = async (image: string) =>
        (
          JSON.parse((await execa('docker', ['inspect', image], { env })).stdout) as {
            Config: { Entrypoint: string[]; Env: string[] | null; Cmd: string[] | null; ExposedPorts?: object };
          }[]
        )[0]?.Config;
      const [app, parent] = [await inspect(tag), await inspect(ref)];
      expect(app?.Entrypoint).toEqual(want.entrypoint);
      // (the legacy builder adds a default PATH when the base has none)
      expect(app?.Env ?? []).toEqual(expect.arrayContaining(parent?.Env ?? []));
      expect(app?.ExposedPorts).toEqual(parent?.ExposedPorts);
      if (want.cmd) expect(app?.Cmd).toEqual(want.cmd);
      // The application's file is in the image, byte for byte.
      const created = await execa('docker', ['create', tag], { env });
      const id = created.stdout.trim();
      try {
        const cp = await execa('docker', ['cp', `${id}:${want.file[0]}`, '-'], { env, encoding: 'buffer' });
        const tar = Buffer.from(cp.stdout as Uint8Array);
        expect(tar.includes(readFileSync(join(dir, want.file[1])))).toBe(true);
      } finally {
        await execa('docker', ['rm', id], { env, reject: false });
        await execa('docker', ['rmi', tag], { env, reject: false });
      }
    }
  });

  it('the examples are the three bases the README promises, each with a Dockerfile pinning its base by ARG', () => {
    for (const base of Object.keys(EXAMPLES)) {
      const dockerfile = readFileSync(join(repoRoot, 'images', 'downstream', base, 'Dockerfile'), 'utf8');
      expect(dockerfile).toMatch(new RegExp(`^ARG BASE=lkl-nabla-${base}-base:\\d`, 'm'));
      expect(dockerfile).toMatch(/^FROM \$\{BASE\}$/m);
    }
  });
});
