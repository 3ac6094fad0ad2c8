import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { requireDocker } from '@nabla-build/testing';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { newTrace, useFixtureWorld } from './fixture-env.js';

const world = useFixtureWorld();

/** `cc --version` and the canonical-root probe identify the host (part of keys); they build nothing. */
const notHostProbe = (c: { command: string; args: string[] }) =>
  !(c.command === 'cc' && c.args[0] === '--version') &&
  !(c.command === 'unshare' && c.args.includes('/mnt/nabla-build/probe/canonical-root.sh'));

const planOf = async (target: string, cache: string) =>
  JSON.parse((await world.run(['plan', target, '--json'], { cache })).stdout) as {
    steps: { id: string; key: string; status: string }[];
  };

describe('nabla-build against fixture upstreams', () => {
  it('hello: fetch, build, package, load into the engine; docker run prints its line', async (ctx) => {
    const services = requireDocker(ctx);
    const cache = world.newCache();
    const r = await world.run(['hello'], { cache, env: { DOCKER_HOST: services.dockerHost } });
    expect(r.exitCode, r.stderr).toBe(0);
    const ref = r.stdout.trim().split('\n').pop() as string;
    expect(ref).toMatch(/^lkl-nabla-hello-base:1\.0\.0-[0-9a-f]{12}$/);
    const run = await execa('docker', ['run', '--rm', ref], {
      env: { DOCKER_HOST: services.dockerHost },
      reject: false,
    });
    expect(run.exitCode).toBe(0);
    expect(run.stderr + run.stdout).toContain('I beheld the wretch — the miserable monster whom I had created.');
    // The image's env reaches the unikernel (RUMP_VERBOSE=1 from the recipe).
    expect(run.stdout + run.stderr).toContain('RUMP_VERBOSE=1');
    // Building again loads nothing: the engine already has the image under every tag.
    await new Promise((r) => setTimeout(r, 1100)); // events have one-second resolution
    const since = Math.floor(Date.now() / 1000);
    const again = await world.run(['hello'], { cache, env: { DOCKER_HOST: services.dockerHost } });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout.trim().split('\n').pop()).toBe(ref);
    const until = Math.floor(Date.now() / 1000) + 1;
    // Events of this image only: other test files load images into the same engine meanwhile.
    const id = (
      await execa('docker', ['image', 'inspect', '-f', '{{.Id}}', ref], { env: { DOCKER_HOST: services.dockerHost } })
    ).stdout.trim();
    const events = await execa(
      'docker',
      [
        'events',
        '--since',
        String(since),
        '--until',
        String(until),
        '--filter',
        'type=image',
        '--filter',
        `image=${id}`,
        '--format',
        '{{.Action}}',
      ],
      {
        env: { DOCKER_HOST: services.dockerHost },
      },
    );
    expect(events.stdout.split('\n').filter((a) => a === 'load')).toEqual([]);
  });

  it('python3: produces python3.nabla and lib/python3.5; a second run spawns no native command and the plan is all cached', async () => {
    const cache = world.newCache();
    const first = await world.run(['python3', '--no-load'], { cache });
    expect(first.exitCode, first.stderr).toBe(0);
    const pkg = readdirSync(join(cache, 'steps', 'package')).find((d) => d.startsWith('python3-')) as string;
    const out = join(cache, 'steps', 'package', pkg, 'out');
    expect(statSync(join(out, 'python3.nabla')).mode & 0o111).not.toBe(0);
    expect(existsSync(join(out, 'python3.5', 'os.py'))).toBe(true);
    const trace = newTrace();
    const second = await world.run(['python3', '--no-load'], { cache, trace, env: { NABLA_BUILD_NO_FAST_PATH: '1' } });
    expect(second.exitCode, second.stderr).toBe(0);
    expect(world.traced(trace).filter(notHostProbe)).toEqual([]);
    const plan = await planOf('python3', cache);
    expect(plan.steps.map((s) => s.status)).toEqual(
      plan.steps.map((s) => (s.id.startsWith('publish:') ? 'always' : 'cached')),
    );
    // And the up-to-date check answers a third run without loading the CLI at all.
    const third = await world.run(['python3', '--no-load'], { cache, trace });
    expect(third.stderr).toContain('up to date');
    expect(world.traced(trace).filter(notHostProbe)).toEqual([]);
  });

  it('fetch fills every cache; a second fetch downloads nothing; --offline with an empty cache fails at once naming the source', async () => {
    const cache = world.newCache();
    const before = world.upstreams.server.requests;
    const first = await world.run(['fetch', 'python3'], { cache });
    expect(first.exitCode, first.stderr).toBe(0);
    const afterFirst = world.upstreams.server.requests;
    expect(afterFirst).toBeGreaterThan(before);
    const second = await world.run(['fetch', 'python3'], { cache });
    expect(second.exitCode, second.stderr).toBe(0);
    expect(world.upstreams.server.requests).toBe(afterFirst);
    // The filled cache builds offline.
    const offlineBuild = await world.run(['python3', '--no-load', '--offline'], { cache });
    expect(offlineBuild.exitCode, offlineBuild.stderr).toBe(0);
    const empty = world.newCache();
    const started = Date.now();
    const offline = await world.run(['fetch', 'python3', '--offline'], { cache: empty });
    expect(offline.exitCode).toBe(1);
    expect(offline.stderr).toMatch(/source \S+ (@[0-9a-f]+ )?is not in the cache, and --offline forbids fetching it/);
    expect(offline.stderr).toContain('nabla-build fetch python3');
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('a failing toolchain build names the command, shows the log tail and path, and a hint', async () => {
    const cache = world.newCache();
    const r = await world.run(['hello', '--no-load'], { cache, env: { NABLA_FIXTURE_FAIL: 'musl' } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/error: .*building toolchain frankenlibc/);
    expect(r.stderr).toContain('last lines of output');
    const log = /full log: (\S+)/.exec(r.stderr)?.[1] as string;
    expect(existsSync(log)).toBe(true);
    expect(readFileSync(log, 'utf8')).toContain('build.sh');
    expect(r.stderr).not.toMatch(/\n\s+at /);
    // Nothing half-written: the toolchain is not a cache entry.
    const plan = await planOf('hello', cache);
    expect(plan.steps.find((s) => s.id === 'toolchain:frankenlibc')?.status).not.toBe('cached');
  });

  it('world builds every base image with one toolchain build, packages in parallel', async () => {
    const cache = world.newCache();
    const trace = newTrace();
    const r = await world.run(['world', '--no-load', '--jobs', '2'], { cache, trace });
    expect(r.exitCode, r.stderr).toBe(0);
    const buildSh = world.traced(trace).filter((c) => c.args.includes('build.sh'));
    expect(buildSh).toHaveLength(1);
    for (const t of ['hello', 'python3', 'nginx', 'redis', 'node', 'solo5-hello'])
      expect(r.stderr).toMatch(new RegExp(`image:${t}\\s+[0-9a-f]{16}\\s`));
    // world is the base images; the runtime pieces are built by `runtime install`.
    expect(r.stderr).not.toMatch(/package:(nabla-run|runnc)\s/);
  });
});
