import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useFixtureWorld } from './fixture-env.js';
import { repoRoot } from './helpers.js';

const world = useFixtureWorld();

describe('no recipe or CLI value ever reaches a shell', () => {
  it('hostile argv and env values in a recipe arrive verbatim and execute nothing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'nb-sec-'));
    cpSync(join(repoRoot, 'recipes'), join(root, 'recipes'), { recursive: true });
    cpSync(join(repoRoot, 'patches'), join(root, 'patches'), { recursive: true });
    const canary = join(root, 'PWNED');
    const hostile = [
      `$(touch ${canary})`,
      `\`touch ${canary}\``,
      `; touch ${canary}`,
      `"quoted" 'single' with spaces`,
      `a\\b|c&d>e`,
    ];
    // A target whose build is a fixed script printing its positional arguments and one env value: if anything
    // interpreted the recipe's values, the canary file would appear or the printed values would differ.
    const argv = [
      'sh',
      '-c',
      'printf "%s\\n" "$@" > probe.out; printf "%s\\n" "$NB_HOSTILE" >> probe.out',
      'probe',
      ...hostile,
    ];
    writeFileSync(
      join(root, 'recipes', 'probe.yaml'),
      [
        'kind: target',
        'name: probe',
        'version: 1.0.0',
        'toolchain: frankenlibc',
        'sources: [rumprun-packages]',
        'build:',
        '  tree: rumprun-packages',
        '  commands:',
        `    - run: ${JSON.stringify(argv)}`,
        `      env: { NB_HOSTILE: ${JSON.stringify(hostile.join(' '))} }`,
        'artifacts:',
        '  - { from: probe.out, to: probe.out }',
        '',
      ].join('\n'),
    );
    const cache = world.newCache();
    const r = await world.run(['probe', '--no-load', '--recipes', join(root, 'recipes')], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    const pkg = readdirSync(join(cache, 'steps', 'package')).find((d) => d.startsWith('probe-')) as string;
    const out = readFileSync(join(cache, 'steps', 'package', pkg, 'out', 'probe.out'), 'utf8');
    expect(out).toBe(`${[...hostile, hostile.join(' ')].join('\n')}\n`);
    expect(existsSync(canary)).toBe(false);
  });

  it('hostile CLI values are rejected as input, never run', async () => {
    const canary = join(mkdtempSync(join(tmpdir(), 'nb-sec-')), 'PWNED');
    for (const args of [
      [`$(touch ${canary})`, '--no-load'],
      ['hello', '--no-load', '--tag', `$(touch ${canary})`],
      ['hello', '--push', '--registry', '127.0.0.1:1', '--namespace', `x;touch ${canary}`],
      ['plan', 'hello', '--mirror', `https://github.com/=$(touch ${canary})`],
    ]) {
      const r = await world.run(args, { cache: world.newCache() });
      expect(r.exitCode, args.join(' ')).toBe(2);
    }
    expect(existsSync(canary)).toBe(false);
  });
});
