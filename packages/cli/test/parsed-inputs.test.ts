import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, repoRoot } from './helpers.js';

/**
 * Parsed input files (settings/parsed.ts): a rerun reads the configs, recipes and lockfile back as JSON, and
 * the answer is exactly what parsing gives; any change of a file is seen, and a bad file is never stored.
 */
describe('parsed inputs kept in the cache', () => {
  const root = mkdtempSync(join(tmpdir(), 'nb-parsed-'));
  const recipes = join(root, 'project', 'recipes');
  const cache = join(root, 'cache');
  const config = join(root, 'config.yaml');
  cpSync(join(repoRoot, 'recipes'), recipes, { recursive: true });
  cpSync(join(repoRoot, 'patches'), join(root, 'project', 'patches'), { recursive: true });
  writeFileSync(config, 'mirrors:\n  - prefix: https://example.invalid/\n    replace: https://example.org/\n');
  const run = (args: string[]) => cli(args, { env: { NABLA_BUILD_CONFIG: config }, cwd: root });
  const plan = ['plan', 'python3', '--json', '--recipes', recipes, '--cache-dir', cache];
  const parsed = () => readdirSync(join(cache, 'parsed')).sort();
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('a rerun answers from the stored values with the same plan, keys included', async () => {
    const first = await run(plan); // creates and marks the cache: nothing stored yet
    expect(first.exitCode, first.stderr).toBe(0);
    const second = await run(plan); // parses again and stores config, recipes, lockfile and host facts
    expect(parsed()).toHaveLength(4);
    const third = await run(plan); // reads them back
    expect(third.exitCode, third.stderr).toBe(0);
    expect(parsed()).toHaveLength(4);
    expect(third.stdout).toBe(first.stdout);
    expect(second.stdout).toBe(first.stdout);
    expect(JSON.parse(third.stdout).steps.length).toBeGreaterThan(5);
  });

  it('the stored host facts follow the compiler: another cc on PATH is probed again, and the keys change', async () => {
    const keys = (stdout: string) =>
      (JSON.parse(stdout).steps as { id: string; key: string }[])
        .filter((s) => /^(toolchain|package):/.test(s.id))
        .map((s) => `${s.id} ${s.key}`);
    const before = await run(plan);
    expect(before.exitCode, before.stderr).toBe(0);
    const bin = join(root, 'other-cc');
    mkdirSync(bin, { recursive: true });
    writeFileSync(join(bin, 'cc'), '#!/bin/sh\necho "cc (another compiler) 99.1"\n');
    chmodSync(join(bin, 'cc'), 0o755);
    const env = { NABLA_BUILD_CONFIG: config, PATH: `${bin}:${process.env.PATH}` };
    const other = await cli(plan, { env, cwd: root });
    expect(other.exitCode, other.stderr).toBe(0);
    const changed = keys(other.stdout);
    expect(changed.length).toBeGreaterThan(1);
    expect(changed.filter((k) => keys(before.stdout).includes(k))).toEqual([]);
    expect(keys((await cli(plan, { env, cwd: root })).stdout)).toEqual(changed); // stored, read back
    expect(keys((await run(plan)).stdout)).toEqual(keys(before.stdout)); // back to the host's cc
  });

  it('an edited recipe, lockfile or config is parsed again', async () => {
    const file = join(recipes, 'python3.yaml');
    const before = readFileSync(file, 'utf8');
    writeFileSync(file, before.replace(/^description: .*$/m, 'description: edited for the test'));
    const list = await run(['list', '--recipes', recipes, '--cache-dir', cache]);
    expect(list.stdout).toContain('edited for the test');
    writeFileSync(file, before);
    expect((await run(['list', '--recipes', recipes, '--cache-dir', cache])).stdout).not.toContain('edited');
    writeFileSync(config, `${readFileSync(config, 'utf8')}bogus: 1\n`);
    const bad = await run(plan);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('bogus');
  });

  it('a bad recipe is reported every time, never stored', async () => {
    writeFileSync(config, 'mirrors: []\n');
    const count = parsed().length;
    writeFileSync(join(recipes, 'broken.yaml'), 'name: broken\nkind: target\n');
    for (let i = 0; i < 2; i++) {
      const r = await run(plan);
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(/broken\.yaml/);
    }
    expect(parsed().length).toBeLessThanOrEqual(count + 1); // the new config only
    rmSync(join(recipes, 'broken.yaml'));
    expect((await run(plan)).exitCode).toBe(0);
  });
});
