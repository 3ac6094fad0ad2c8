import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { projectCopy, useFixtureWorld } from './fixture-env.js';

/**
 * Secrets in nabla-build's own environment (registry credentials, CI and cloud tokens) reach no native build
 * process, no log, no image label or layer, and no message. A probe target's build command dumps its whole
 * environment into an artifact (and into its log); the fixture frankenlibc build.sh and Makefiles run under
 * the same rules. Then every file in the cache — gzip layers decompressed — and everything printed is searched.
 */

const SECRETS = {
  NABLA_REGISTRY_USER: 'robot-user-6f1c2a',
  NABLA_REGISTRY_PASSWORD: 'registry-password-9d8e7f',
  GITHUB_TOKEN: 'ghp_secret0a1b2c3d4e5f',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-77ab31',
  CI_JOB_TOKEN: 'ci-job-token-5150aa',
  MY_APP_SECRET: 'app-secret-c0ffee42',
};
/** Stray build settings that would change what a build produces without changing its key. */
const STRAY = { CC: '/bin/false', CFLAGS: '-DNABLA_STRAY_FLAG', MAKEFLAGS: '-j99 --jobserver-auth=98,99' };

const world = useFixtureWorld();

/** Every file under `dir`, gzip members decompressed, as text; symlinks are not followed. */
function* filesUnder(dir: string): Generator<[string, string]> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* filesUnder(p);
    else if (e.isFile()) {
      let bytes = readFileSync(p);
      if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
        try {
          bytes = gunzipSync(bytes);
        } catch {}
      }
      yield [p, bytes.toString('latin1')];
    }
  }
}

function leaks(text: string): string[] {
  return Object.entries(SECRETS)
    .filter(([, v]) => text.includes(v))
    .map(([k]) => k);
}

describe('secrets in the parent environment stay there', () => {
  it('no build process, log, label, layer or message sees them', async () => {
    const p = projectCopy();
    writeFileSync(
      join(p.recipes, 'envprobe.yaml'),
      [
        'kind: target',
        'name: envprobe',
        'version: 1.0.0',
        'description: dumps the environment its build command gets',
        'license: MIT',
        'toolchain: frankenlibc',
        'sources: [rumprun-packages]',
        'build:',
        '  tree: rumprun-packages',
        '  commands:',
        '    - run: [sh, -c, "env | sort > env.out; env | sort; cat env.out > env.nabla"]',
        '      env: { RECIPE_VALUE: from-the-recipe }',
        'artifacts:',
        '  - { from: env.out, to: env.out }',
        '  - { from: env.nabla, to: envprobe.nabla }',
        'image:',
        '  repository: lkl-nabla-envprobe-base',
        '  entrypoint: [/envprobe.nabla]',
        '  labels: { org.example.probe: "yes" }',
        '  copy:',
        '    - { from: envprobe.nabla, to: /envprobe.nabla }',
        '    - { from: env.out, to: /env.out }',
        '',
      ].join('\n'),
    );
    const cache = world.newCache();
    const out = mkdtempSync(join(tmpdir(), 'nb-secrets-out-'));
    const env = { ...SECRETS, ...STRAY, NABLA_REGISTRY_HOST: '127.0.0.1:1' };
    const build = await world.run(
      ['envprobe', 'hello', '--unlocked', '--recipes', p.recipes, '--output', `oci:${join(out, 'oci')}`],
      { cache, env },
    );
    expect(build.exitCode, build.stderr).toBe(0);

    // The probe's build environment is exactly the allow list plus the recipe's env.
    const pkg = readdirSync(join(cache, 'steps', 'package')).find((d) => d.startsWith('envprobe-')) as string;
    const dumped = readFileSync(join(cache, 'steps', 'package', pkg, 'out', 'env.out'), 'utf8');
    const names = dumped
      .split('\n')
      .filter(Boolean)
      .map((l) => l.slice(0, l.indexOf('=')));
    const allowed = new Set(['PATH', 'HOME', 'TMPDIR', 'TERM', 'LC_ALL', 'SOURCE_DATE_EPOCH', 'RECIPE_VALUE', 'PWD']);
    const extra = names.filter(
      (n) => !allowed.has(n) && !n.startsWith('NABLA_FIXTURE_') && !/^(SHLVL|_|OLDPWD)$/.test(n),
    );
    expect(extra, dumped).toEqual([]);
    expect(dumped).toContain('RECIPE_VALUE=from-the-recipe');
    expect(dumped).toMatch(/^HOME=\/(mnt\/nabla-build|.*\/steps\/package\/)/m);
    for (const k of Object.keys(STRAY)) expect(names).not.toContain(k);

    // The log header names what was passed; no log holds a secret.
    const logs = readdirSync(join(cache, 'logs')).map((f) => readFileSync(join(cache, 'logs', f), 'utf8'));
    expect(logs.join('\n')).toMatch(/environment \(allow list; everything else removed\): HOME .*PATH/);

    // Nothing anywhere in the cache (steps, logs, layers decompressed, configs with labels) or the OCI output.
    const found: string[] = [];
    for (const dir of [cache, out])
      for (const [file, text] of filesUnder(dir)) for (const k of leaks(text)) found.push(`${k} in ${file}`);
    expect(found).toEqual([]);
    expect(leaks(build.stdout + build.stderr)).toEqual([]);

    // Errors: a push that fails (nothing listens on port 1) names the registry, never the credentials.
    const push = await world.run(
      [
        'hello',
        '--unlocked',
        '--recipes',
        p.recipes,
        '--push',
        '--no-test',
        '--registry',
        '127.0.0.1:1',
        '--namespace',
        'ns',
      ],
      { cache, env: { ...env, NABLA_REGISTRY_HOST: '127.0.0.1:1' } },
    );
    expect(push.exitCode).not.toBe(0);
    expect(push.stderr).toContain('127.0.0.1:1');
    expect(leaks(push.stdout + push.stderr)).toEqual([]);
    const verbose = await world.run(['plan', 'hello', '--verbose', '--json'], { cache, env });
    expect(leaks(verbose.stdout + verbose.stderr)).toEqual([]);
    // Owner-only logs.
    for (const f of readdirSync(join(cache, 'logs'))) expect(statSync(join(cache, 'logs', f)).mode & 0o077).toBe(0);
  });
});
