import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FixtureWorld, fixtureWorld } from './fixture-env.js';

let world: FixtureWorld;
beforeAll(async () => {
  world = await fixtureWorld();
});
afterAll(async () => {
  await world?.upstreams.close();
});

describe('skip reasons say why a step did not run', () => {
  it('after a failure: "the build stopped when … failed", never "a later step is cached" with nothing cached', async () => {
    const r = await world.run(['hello', '--no-load'], { cache: world.newCache(), env: { NABLA_FIXTURE_FAIL: 'musl' } });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).not.toContain('a later step is cached');
    expect(r.stderr).toMatch(/not run: the build stopped when toolchain:frankenlibc failed/);
  });
});
