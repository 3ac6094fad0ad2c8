import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { snapshotTree } from '@nabla-build/testing';
import { describe, expect, it } from 'vitest';
import { editFile, projectCopy, useFixtureWorld } from './fixture-env.js';

/**
 * Malformed input of every kind (recipes, lockfile, config, CLI arguments, mirrors, patches, image references):
 * each gives one error line naming where the problem is, exit code 2, no stack trace, and nothing written.
 */

const world = useFixtureWorld();

interface Project {
  root: string;
  recipes: string;
  patches: string;
  config: string;
}

function project(): Project {
  const p = projectCopy();
  const config = join(p.root, 'config.yaml');
  cpSync(world.upstreams.configFile, config);
  return { ...p, config };
}

interface Case {
  name: string;
  /** Breaks something in the project copy; returns extra CLI arguments and env. */
  setup(p: Project): { args?: string[]; env?: Record<string, string> } | undefined;
  args?: string[];
  /** Where the error must point (a regexp over the `error:` line). */
  where: RegExp;
}

const R = (p: Project, f: string) => join(p.recipes, f);
const cases: Case[] = [
  // recipes
  {
    name: 'recipe: missing field',
    setup: (p) => void editFile(R(p, 'python3.yaml'), 'version: 3.5.2\n', ''),
    where: /python3\.yaml:\d+: version: is required/,
  },
  {
    name: 'recipe: mistyped field',
    setup: (p) => void editFile(R(p, 'python3.yaml'), 'artifacts:', 'artefacts:'),
    where: /python3\.yaml:\d+: artefacts: unknown field/,
  },
  {
    name: 'recipe: number where a string belongs',
    setup: (p) => void editFile(R(p, 'python3.yaml'), "PYTHONHASHSEED: '1'", 'PYTHONHASHSEED: 1'),
    where: /python3\.yaml:\d+: image\.env\.PYTHONHASHSEED: /,
  },
  {
    name: 'recipe: short commit',
    setup: (p) => void editFile(R(p, 'sources.yaml'), 'rev: 03b9191dc24ecd70552d8fe3eae62381cf4f4ed2', 'rev: 03b9191'),
    where: /sources\.yaml:\d+: sources\[\d+\]\.rev: must be a full 40-hex/,
  },
  {
    name: 'recipe: bad sha256',
    setup: (p) => void editFile(R(p, 'sources.yaml'), /sha256: c3e5e9f\w+/, 'sha256: c3e5'),
    where: /sources\.yaml:\d+: sources\[\d+\]\.sha256: must be a 64-hex/,
  },
  {
    name: 'recipe: unknown source',
    setup: (p) =>
      void editFile(R(p, 'redis.yaml'), 'sources: [rumprun-packages, redis]', 'sources: [rumprun-packages, rediss]'),
    where: /redis\.yaml:\d+: sources\[1\]: unknown source "rediss"/,
  },
  {
    name: 'recipe: unknown toolchain',
    setup: (p) => void editFile(R(p, 'nginx.yaml'), 'toolchain: frankenlibc', 'toolchain: frankenlib'),
    where: /nginx\.yaml:\d+: toolchain: unknown toolchain/,
  },
  {
    name: 'recipe: duplicate target',
    setup: (p) => void writeFileSync(R(p, 'zz-copy.yaml'), readFileSync(R(p, 'redis.yaml'))),
    where: /zz-copy\.yaml:\d+: name: recipe "redis" is also defined/,
  },
  {
    name: 'recipe: YAML syntax',
    setup: (p) => void editFile(R(p, 'hello.yaml'), 'kind: target', 'kind: [target'),
    where: /hello\.yaml:\d+: invalid YAML/,
  },
  {
    name: 'recipe: bad hint regex',
    setup: (p) => void editFile(R(p, 'frankenlibc.yaml'), "match: 'mawk is not supported'", "match: 'mawk ('"),
    where: /frankenlibc\.yaml:\d+: hints\[\d+\]\.match: invalid regular expression/,
  },
  {
    name: 'recipe: copy from outside the artifacts',
    setup: (p) => void editFile(R(p, 'nginx.yaml'), 'from: data/www', 'from: html'),
    where: /nginx\.yaml:\d+: image\.copy\[\d+\]\.from: "html" is not under an artifact/,
  },
  {
    name: 'recipe: relative path in the image',
    setup: (p) => void editFile(R(p, 'hello.yaml'), 'to: /hello.nabla }', 'to: hello.nabla }'),
    where: /hello\.yaml:\d+: image\.copy\[0\]\.to: must be an absolute path/,
  },
  {
    name: 'recipe: artifact escaping the tree',
    setup: (p) => void editFile(R(p, 'redis.yaml'), 'from: redis/bin/redis-server', 'from: ../../etc/passwd'),
    where: /redis\.yaml:\d+: artifacts\[0\]\.from: must be a relative path without "\.\."/,
  },
  {
    name: 'recipe: bad exposed port',
    setup: (p) => void editFile(R(p, 'redis.yaml'), '6379/tcp', '6379/xyz'),
    where: /redis\.yaml:\d+: image\.exposedPorts\[0\]: must look like 80\/tcp/,
  },
  {
    name: 'recipe: invalid repository name',
    setup: (p) => void editFile(R(p, 'redis.yaml'), 'repository: lkl-nabla-redis-base', 'repository: Redis_Base!'),
    where: /redis\.yaml:\d+: image\.repository: must be a valid repository name/,
  },
  // lockfile
  // (the fixture config overrides every pin, which takes the lockfile out of play: these use an empty config)
  {
    name: 'lockfile: YAML syntax',
    setup: (p) => void writeFileSync(R(p, 'nabla.lock'), 'version: 1\ngit: [\n'),
    where: /nabla\.lock(:\d+)?: /,
  },
  {
    name: 'lockfile: stale pin',
    setup: (p) => {
      editFile(R(p, 'nabla.lock'), 'rev: 03b9191dc24ecd70552d8fe3eae62381cf4f4ed2', `rev: ${'a'.repeat(40)}`);
      writeFileSync(p.config, '');
      return undefined;
    },
    args: ['plan', 'redis'],
    where: /nabla\.lock: source "rumprun-packages": the recipe pins/,
  },
  {
    name: 'lockfile: missing source',
    setup: (p) => {
      editFile(R(p, 'nabla.lock'), / {2}redis:\n {4}url: .*\n {4}sha256: .*\n/, '');
      writeFileSync(p.config, '');
      return undefined;
    },
    args: ['plan', 'redis'],
    where: /nabla\.lock: source "redis" is not in recipes\/nabla\.lock/,
  },
  {
    name: 'lockfile: bad sha256',
    setup: (p) => void editFile(R(p, 'nabla.lock'), /sha256: 6f1e15\w+/, 'sha256: xyz'),
    where: /nabla\.lock:\d+: /,
  },
  // config
  {
    name: 'config: unknown key',
    setup: (p) => void writeFileSync(p.config, `${readFileSync(p.config, 'utf8')}mirorrs: []\n`),
    where: /config\.yaml:\d+: (mirorrs: )?unknown field/,
  },
  {
    name: 'config: override with a short rev',
    setup: (p) =>
      void writeFileSync(
        p.config,
        `${readFileSync(p.config, 'utf8').replace(/overrides:\n/, 'overrides:\n  musl-extra: { rev: abc }\n')}`,
      ),
    where: /config\.yaml:\d+: overrides\.musl-extra\.rev: must be a full 40-hex/,
  },
  {
    name: 'config: mirror without replacement',
    setup: (p) =>
      void writeFileSync(
        p.config,
        readFileSync(p.config, 'utf8').replace(/mirrors:\n/, "mirrors:\n  - { prefix: 'https://x/' }\n"),
      ),
    where: /config\.yaml:\d+: mirrors\[0\]\.replace: /,
  },
  {
    name: 'config: YAML syntax',
    setup: (p) => void writeFileSync(p.config, 'mirrors: [\n'),
    where: /config\.yaml:\d+: invalid YAML/,
  },
  // CLI arguments
  { name: 'cli: unknown target', setup: () => undefined, args: ['plan', 'pyhton3'], where: /unknown target "pyhton3"/ },
  {
    name: 'cli: --jobs 0',
    setup: () => undefined,
    args: ['plan', 'hello', '--jobs', '0'],
    where: /--jobs must be a positive integer/,
  },
  {
    name: 'cli: --jobs not a number',
    setup: () => undefined,
    args: ['plan', 'hello', '--jobs', 'many'],
    where: /--jobs must be a positive integer/,
  },
  {
    name: 'cli: unknown option',
    setup: () => undefined,
    args: ['plan', 'hello', '--frobnicate'],
    where: /Unknown argument: frobnicate/,
  },
  {
    name: 'cli: bad --output',
    setup: () => undefined,
    args: ['hello', '--output', 'zip:/tmp/x'],
    where: /--output zip:\/tmp\/x: expected oci:<dir> or tar:<file>/,
  },
  {
    name: 'cli: bad --tag',
    setup: () => undefined,
    args: ['hello', '--no-load', '--tag', 'bad tag'],
    where: /--tag "bad tag" is not a valid tag/,
  },
  {
    name: 'cli: --push with nowhere to push',
    setup: () => undefined,
    args: ['hello', '--push'],
    where: /--push needs a destination/,
  },
  // mirrors
  {
    name: 'mirror: --mirror without =',
    setup: () => undefined,
    args: ['plan', 'hello', '--mirror', 'https://github.com/'],
    where: /--mirror/,
  },
  {
    name: 'mirror: bad NABLA_BUILD_MIRRORS',
    setup: () => ({ env: { NABLA_BUILD_MIRRORS: 'no-equals-sign' } }),
    args: ['plan', 'hello'],
    where: /NABLA_BUILD_MIRRORS/,
  },
  {
    name: 'mirror: local path without allowLocal',
    setup: (p) =>
      void writeFileSync(p.config, readFileSync(p.config, 'utf8').replace('allowLocal: true', 'allowLocal: false')),
    args: ['fetch', 'hello'],
    where: /config\.yaml:\d+: .*points at a local path, which is not allowed/,
  },
  {
    name: 'source: file:// URL without allowLocal',
    setup: (p) => {
      editFile(
        R(p, 'sources.yaml'),
        'git: https://github.com/retrage/frankenlibc.git',
        'git: file:///nonexistent/frankenlibc.git',
      );
      writeFileSync(p.config, '');
      return undefined;
    },
    args: ['fetch', 'hello'],
    where:
      /file:\/\/\/nonexistent\/frankenlibc\.git is a local path, which sources may only name when the config allows it/,
  },
  // image references
  {
    name: 'reference: bad registry',
    setup: () => undefined,
    args: ['hello', '--push', '--registry', 'bad registry', '--namespace', 'x'],
    where: /image reference .* is invalid: it contains whitespace/,
  },
  {
    name: 'reference: not an OCI layout',
    setup: () => undefined,
    args: ['run', 'oci:/nonexistent-layout', '--dry-run'],
    where: /\/nonexistent-layout is not an OCI image layout/,
  },
  // patches
  {
    name: 'patch: not a patch',
    setup: (p) =>
      void writeFileSync(
        join(p.patches, 'solo5', '0004-garbage.patch'),
        'this is not a patch\n--- \n+++ nothing\n@@ garbage\n',
      ),
    args: ['hello', '--no-load', '--unlocked'], // past the lockfile's patch check, to the patch parser
    where: /0004-garbage\.patch/,
  },
];

describe('malformed input', () => {
  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  for (const c of cases) {
    it(c.name, async () => {
      const p = project();
      const extra = c.setup(p) ?? {};
      const before = snapshotTree(p.root);
      const cache = join(p.root, 'cache');
      const args = [...(c.args ?? ['plan', 'python3']), ...(extra.args ?? [])];
      const r = await world.run(['--recipes', p.recipes, '--config', p.config, ...args], {
        cache,
        env: extra.env ?? {},
      });
      expect(r.exitCode, `${r.stderr}`).toBe(2);
      const errorLines = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
      expect(errorLines, r.stderr).toHaveLength(1);
      expect(errorLines[0]).toMatch(c.where);
      expect(r.stderr).not.toMatch(/\n\s+at .*:\d+:\d+/);
      expect(r.stdout).toBe('');
      // Nothing half-written: inputs untouched; the cache holds no entry of a failed step.
      expect(snapshotTree(p.root, cache)).toEqual(before);
      expect(failedEntries(cache)).toEqual([]);
    });
  }
});

/** Step directories without a manifest that are not resumable attempts: there should be none after a usage error. */
function failedEntries(cache: string): string[] {
  const steps = join(cache, 'steps');
  if (!existsSync(steps)) return [];
  const out: string[] = [];
  for (const kind of readdirSync(steps))
    for (const d of readdirSync(join(steps, kind)))
      if (kind !== 'toolchain' && kind !== 'patch' && !existsSync(join(steps, kind, d, 'entry.json')))
        out.push(`${kind}/${d}`);
  return out;
}
