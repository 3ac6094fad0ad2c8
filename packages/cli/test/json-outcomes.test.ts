import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireDocker } from '@nabla-build/testing';
import { describe, expect, it } from 'vitest';
import { projectCopy, useFixtureWorld } from './fixture-env.js';

const world = useFixtureWorld();

/** A package-and-image target whose build runs `script` (sh -c) in the rumprun-packages tree. */
function target(name: string, script: string): string {
  return [
    'kind: target',
    `name: ${name}`,
    'version: 1.0.0',
    `description: ${name} (test target)`,
    'license: MIT',
    'toolchain: frankenlibc',
    'sources: [rumprun-packages]',
    'build:',
    '  tree: rumprun-packages',
    '  commands:',
    `    - run: [sh, -c, ${JSON.stringify(script)}]`,
    'artifacts:',
    `  - { from: ${name}.out, to: ${name}.nabla }`,
    'image:',
    `  repository: lkl-nabla-${name}-base`,
    `  entrypoint: [/${name}.nabla]`,
    '  copy:',
    `    - { from: ${name}.nabla, to: /${name}.nabla }`,
    '',
  ].join('\n');
}

interface Report {
  ok: boolean;
  targets: string[];
  results: {
    target: string;
    status: string;
    published: { kind: string; reference: string; manifestDigest: string }[];
    failedStep?: string;
    error?: { message: string; logPath?: string };
    reason?: string;
  }[];
}

describe('--json survives partial failure', () => {
  it('one failing target: one document with every outcome, digests of what was pushed, exit 1', async () => {
    const services = requireDocker();
    const p = projectCopy();
    writeFileSync(join(p.recipes, 'jgood.yaml'), target('jgood', 'echo good > jgood.out'));
    // Fails after the good one has been pushed; the slow one is still building then, and is stopped.
    writeFileSync(join(p.recipes, 'jbad.yaml'), target('jbad', 'sleep 6; echo "jbad: broken on purpose" >&2; exit 3'));
    writeFileSync(join(p.recipes, 'jslow.yaml'), target('jslow', 'sleep 60; echo slow > jslow.out'));
    const ns = `json${process.pid}`;
    const r = await world.run(
      [
        'jgood',
        'jbad',
        'jslow',
        '--unlocked',
        '--recipes',
        p.recipes,
        '--push',
        '--no-test',
        '--registry',
        services.registry,
        '--namespace',
        ns,
        '--json',
        '--jobs',
        '4',
      ],
      { cache: world.newCache() },
    );
    expect(r.exitCode, r.stderr).toBe(1);
    const report = JSON.parse(r.stdout) as Report; // exactly one JSON document on stdout
    expect(report.ok).toBe(false);
    expect(report.targets.sort()).toEqual(['jbad', 'jgood', 'jslow']);
    const by = Object.fromEntries(report.results.map((x) => [x.target, x]));
    expect(by.jgood?.status).toBe('published');
    const push = by.jgood?.published.find((x) => x.kind === 'push');
    expect(push?.reference).toMatch(
      new RegExp(`^${services.registry}/${ns}/lkl-nabla-jgood-base@sha256:[0-9a-f]{64}$`),
    );
    expect(push?.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(by.jbad?.status).toBe('failed');
    expect(by.jbad?.failedStep).toBe('package:jbad');
    expect(by.jbad?.error?.message).toMatch(/exited with code 3/);
    expect(by.jbad?.error?.logPath).toMatch(/\.log$/);
    expect(by.jslow?.status).toBe('skipped');
    expect(by.jslow?.reason).toBe('not finished: the build stopped when package:jbad failed');
    // The error itself is on stderr, located, as without --json.
    expect(r.stderr).toMatch(/^error: .*jbad/m);
  }, 180_000);

  it('a successful build has ok: true and a result per target', async () => {
    const r = await world.run(['hello', '--no-load', '--json'], { cache: world.newCache() });
    expect(r.exitCode, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as Report;
    expect(report.ok).toBe(true);
    expect(report.results).toEqual([{ target: 'hello', status: 'built', published: [] }]);
  });
});
