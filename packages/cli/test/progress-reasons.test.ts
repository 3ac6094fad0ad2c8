import { describe, expect, it } from 'vitest';
import { useFixtureWorld } from './fixture-env.js';

const world = useFixtureWorld();

describe('skip reasons say why a step did not run', () => {
  it('after a failure: "the build stopped when … failed", never "a later step is cached" with nothing cached', async () => {
    const r = await world.run(['hello', '--no-load'], { cache: world.newCache(), env: { NABLA_FIXTURE_FAIL: 'musl' } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).not.toContain('a later step is cached');
    expect(r.stderr).toMatch(/not run: the build stopped when toolchain:frankenlibc failed/);
  });
});

describe('without an engine and without outputs', () => {
  it('stderr says where the image went and how to load it', async () => {
    const { existsSync } = await import('node:fs');
    const { join } = await import('node:path');
    const r = await world.run(['hello'], {
      cache: world.newCache(),
      env: { DOCKER_HOST: 'unix:///nonexistent/docker.sock', NABLA_BUILD_NO_FAST_PATH: '1' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const m =
      /no Docker engine answered, so hello was not loaded: its image is the OCI layout (\S+); load it with `nabla-build hello --load` once an engine runs/.exec(
        r.stderr,
      );
    expect(m, r.stderr).not.toBeNull();
    expect(existsSync(join(m?.[1] as string, 'index.json'))).toBe(true);
  });
});

describe('a terminal that reports no width', () => {
  it('gets plain progress lines, not a live view drawn for 0 columns', async (ctx) => {
    const { execa } = await import('execa');
    const { join } = await import('node:path');
    const { repoRoot } = await import('./helpers.js');
    if (!(await execa('sh', ['-c', 'command -v script'], { reject: false })).stdout) {
      if (process.env.CI === 'true') throw new Error('script(1) (util-linux) is needed for this test');
      ctx.skip();
    }
    const cache = world.newCache();
    const bin = join(repoRoot, 'packages', 'cli', 'bin', 'nabla-build.js');
    const cmd = `stty cols 0 rows 0; ${process.execPath} ${bin} --cache-dir ${cache} hello --no-load`;
    // A pseudo-terminal (script), CI unset: without the width check this is the live view.
    const r = await execa('script', ['-qec', cmd, '/dev/null'], {
      env: { ...process.env, CI: '', NABLA_BUILD_CONFIG: world.upstreams.configFile, NABLA_BUILD_NO_FAST_PATH: '1' },
      extendEnv: false,
      reject: false,
      timeout: 300_000,
    });
    expect(r.exitCode, r.stdout).toBe(0);
    // Plain lines (phase lines of the plain reporter), not the live view (which hides the cursor: ESC[?25l).
    const ESC = String.fromCharCode(27);
    expect(r.stdout).not.toContain(`${ESC}[?25l`);
    expect(r.stdout).toMatch(/^ {2}toolchain frankenlibc: /m);
  });
});
