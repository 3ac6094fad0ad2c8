import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { projectCopy, useFixtureWorld } from './fixture-env.js';
import { cli, repoRoot } from './helpers.js';

const world = useFixtureWorld();

describe('the lockfile', () => {
  it('the shipped lockfile pins every source and patch and is up to date', async () => {
    const r = await cli(['lock', '--no-verify', '--check']);
    expect(r.exitCode, r.stderr).toBe(0);
    const lock = readFileSync(join(repoRoot, 'recipes', 'nabla.lock'), 'utf8');
    for (const s of [
      'frankenlibc',
      'rumprun-packages',
      'python',
      'libressl',
      'sqlite',
      'zlib',
      'nginx',
      'pcre',
      'redis',
      'node',
    ])
      expect(lock).toMatch(new RegExp(`^  ${s}:$`, 'm'));
    for (const sub of ['linux', 'musl', 'llvm', 'solo5']) expect(lock).toMatch(new RegExp(`^      ${sub}:$`, 'm'));
    for (const p of readdirSync(join(repoRoot, 'patches', 'solo5'))) expect(lock).toContain(`patches/solo5/${p}: `);
  });

  it('lock is idempotent, and --check notices a changed recipe', async () => {
    const p = projectCopy();
    const first = await cli(['lock', '--no-verify', '--recipes', p.recipes]);
    expect(first.exitCode, first.stderr).toBe(0);
    const text = readFileSync(join(p.recipes, 'nabla.lock'), 'utf8');
    expect((await cli(['lock', '--no-verify', '--recipes', p.recipes])).exitCode).toBe(0);
    expect(readFileSync(join(p.recipes, 'nabla.lock'), 'utf8')).toBe(text);
    const patch = join(p.patches, 'solo5', readdirSync(join(p.patches, 'solo5'))[0] as string);
    writeFileSync(patch, `${readFileSync(patch, 'utf8')}\n`);
    const check = await cli(['lock', '--no-verify', '--check', '--recipes', p.recipes]);
    expect(check.exitCode).toBe(1);
    expect(check.stderr).toContain('out of date');
  });
});

describe('strict patch series', () => {
  it('a conflicting project patch fails naming patch, file and hunk, and leaves the tree as it was', async () => {
    const p = projectCopy();
    // Same target line, different context: the hunk cannot apply.
    const patch = join(p.patches, 'solo5', '0001-configure-accept-gcc-10-and-newer.patch');
    writeFileSync(patch, readFileSync(patch, 'utf8').replace(' cc_maybe_gcc()\n {', ' cc_maybe_gcc_renamed()\n {'));
    const cache = world.newCache();
    // --unlocked: with the lockfile, the edited patch is refused before anything runs (faults-hostile.test.ts).
    const r = await world.run(['hello', '--no-load', '--unlocked', '--recipes', p.recipes], { cache });
    expect(r.exitCode).toBe(1);
    const error = r.stderr.split('\n').find((l) => l.startsWith('error: ')) as string;
    expect(error).toContain('0001-configure-accept-gcc-10-and-newer.patch');
    expect(error).toContain('configure.sh');
    expect(error).toMatch(/hunk #?1/i);
    expect(r.stderr).toContain('hint: ');
    // The failed patch step (the Solo5 step's tree: the project's Solo5 series is applied there) left no tree
    // and no entry behind; the checkout it used was clean afterwards.
    const steps = join(cache, 'steps');
    expect(readdirSync(join(steps, 'patch')).filter((d) => d.startsWith('frankenlibc@solo5-'))).toEqual([]);
  });

  it('the shipped patches apply to a clean fixture tree with no fuzz', async () => {
    const cache = world.newCache();
    const r = await world.run(['hello', '--no-load', '--verbose'], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    // frankenlibc's tree takes its upstream 0002-0003 (musl, LKL); the Solo5 step's tree its upstream 0001 and
    // the project's Solo5 series.
    const applied: string[] = [];
    for (const prefix of ['frankenlibc-', 'frankenlibc@solo5-']) {
      const log = readdirSync(join(cache, 'logs')).find((l) => l.startsWith(`patch-${prefix}`)) as string;
      const text = readFileSync(join(cache, 'logs', log), 'utf8');
      expect(text).not.toMatch(/with fuzz [1-9]/);
      const dir = readdirSync(join(cache, 'steps', 'patch')).find((d) => d.startsWith(prefix)) as string;
      const entry = JSON.parse(readFileSync(join(cache, 'steps', 'patch', dir, 'entry.json'), 'utf8')) as {
        result: { patches: { name: string; status: string }[] };
      };
      expect(entry.result.patches.map((x) => x.status)).toEqual(entry.result.patches.map(() => 'applied'));
      applied.push(...entry.result.patches.map((x) => x.name));
    }
    expect(applied).toEqual(expect.arrayContaining(readdirSync(join(repoRoot, 'patches', 'solo5'))));
    expect(applied).toEqual(
      expect.arrayContaining([
        '0001-solo5-elf-segment-align-workaround.patch',
        '0002-musl-stack-chk-fail.patch',
        '0003-linux-task-stack-size.patch',
      ]),
    );
  });
});
