import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { imageDigests, newTrace, projectCopy, useFixtureWorld } from './fixture-env.js';

const world = useFixtureWorld();

/**
 * Native builds among traced commands: directly, or through the canonical build root (`unshare` for a step's
 * only command, `nsenter` into the root a step of several commands set up once).
 */
const inRoot = (c: { command: string }) => c.command === 'unshare' || c.command === 'nsenter';
const kinds = (cmds: { command: string; args: string[] }[]) => ({
  toolchain: cmds.filter((c) => c.args.includes('build.sh')).length,
  make: cmds.filter((c) => c.command === 'make' || (inRoot(c) && c.args.includes('make'))).length,
});

describe('the content-addressed cache', () => {
  it('touching one toolchain patch rebuilds the toolchain and dependent packages; an image env value rebuilds only images', async () => {
    const p = projectCopy();
    const cache = world.newCache();
    // --unlocked: the patch is edited without `nabla-build lock` (a locked build refuses it, faults-hostile.test.ts).
    const args = ['python3', 'redis', '--no-load', '--unlocked', '--recipes', p.recipes];
    expect((await world.run(args, { cache })).exitCode).toBe(0);

    // A patch's header (not its hunks) changes: its digest changes, so the toolchain chain reruns.
    const patch = join(p.patches, 'solo5', readdirSync(join(p.patches, 'solo5'))[0] as string);
    writeFileSync(patch, readFileSync(patch, 'utf8').replace('Subject: [PATCH]', 'Subject: [PATCH] (reworded)'));
    const t1 = newTrace();
    const r1 = await world.run(args, { cache, trace: t1, env: { NABLA_BUILD_NO_FAST_PATH: '1' } });
    expect(r1.exitCode, r1.stderr).toBe(0);
    expect(kinds(world.traced(t1)).toolchain).toBe(1);
    expect(kinds(world.traced(t1)).make).toBeGreaterThanOrEqual(2);

    // An image env value: no native command at all, and only python3's image is new.
    const before = imageDigests(cache);
    const py = join(p.recipes, 'python3.yaml');
    writeFileSync(py, readFileSync(py, 'utf8').replace("PYTHONHASHSEED: '1'", "PYTHONHASHSEED: '0'"));
    const t2 = newTrace();
    const r2 = await world.run(args, { cache, trace: t2 });
    expect(r2.exitCode, r2.stderr).toBe(0);
    expect(kinds(world.traced(t2))).toEqual({ toolchain: 0, make: 0 });
    const after = imageDigests(cache);
    expect(
      Object.keys(after)
        .filter((k) => !(k in before))
        .map((k) => k.replace(/-[0-9a-f]{32}$/, '')),
    ).toEqual(['python3']);
  });

  it('two clean builds in different cache directories, at different times, give identical image digests', async () => {
    const a = world.newCache();
    const b = join(world.newCache(), 'a', 'much', 'longer', 'cache', 'path');
    expect((await world.run(['python3', 'hello', '--no-load'], { cache: a })).exitCode).toBe(0);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await world.run(['python3', 'hello', '--no-load'], { cache: b })).exitCode).toBe(0);
    const da = Object.values(imageDigests(a)).sort();
    expect(da).toHaveLength(2);
    expect(Object.values(imageDigests(b)).sort()).toEqual(da);
  });

  it('a corrupted cache entry is detected and rebuilt', async () => {
    const cache = world.newCache();
    expect((await world.run(['redis', '--no-load'], { cache })).exitCode).toBe(0);
    const pkgDir = join(
      cache,
      'steps',
      'package',
      readdirSync(join(cache, 'steps', 'package')).find((d) => d.startsWith('redis-')) as string,
    );
    const bin = join(pkgDir, 'out', 'redis.nabla');
    const original = readFileSync(bin);
    writeFileSync(bin, Buffer.concat([original, Buffer.from('tampered')]));
    // The image is intact, so only an input check finds it: change the image to force reading the package.
    const imgDir = join(cache, 'steps', 'image');
    const img = join(imgDir, readdirSync(imgDir)[0] as string, 'oci', 'index.json');
    writeFileSync(img, '{}');
    const t = newTrace();
    const r = await world.run(['redis', '--no-load'], { cache, trace: t, env: { NABLA_BUILD_NO_FAST_PATH: '1' } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(kinds(world.traced(t)).make).toBeGreaterThan(0);
    expect(readFileSync(bin)).toEqual(original);
  });

  it('two processes on one cache both succeed and build the shared toolchain once', async () => {
    const cache = world.newCache();
    const t = newTrace();
    const [a, b] = await Promise.all([
      world.run(['hello', '--no-load'], { cache, trace: t }),
      world.run(['solo5-hello', '--no-load'], { cache, trace: t }),
    ]);
    expect(a.exitCode, a.stderr).toBe(0);
    expect(b.exitCode, b.stderr).toBe(0);
    expect(kinds(world.traced(t)).toolchain).toBe(1);
  });
});
