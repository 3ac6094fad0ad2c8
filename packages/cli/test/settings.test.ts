import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SETTINGS } from '../src/settings/catalog.js';
import { cli, repoRoot } from './helpers.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'nb-settings-'));

interface ConfigRow {
  name: string;
  value: string;
  source: string;
}
const configOf = async (args: string[], opts: Parameters<typeof cli>[1] = {}) => {
  const r = await cli(['config', '--json', ...args], opts);
  expect(r.exitCode, r.stderr).toBe(0);
  const rows = JSON.parse(r.stdout) as ConfigRow[];
  return Object.fromEntries(rows.map((x) => [x.name, x]));
};

/** The README's settings table: setting, flag, environment, config key (backticks stripped). */
function readmeTable(): { name: string; flag: string; env: string; config: string }[] {
  const text = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const start = text.indexOf('<!-- settings-table');
  expect(start, 'README.md has the settings table marker').toBeGreaterThan(0);
  const lines = text.slice(start).split('\n').slice(1);
  const rows: string[][] = [];
  for (const l of lines.slice(2)) {
    if (!l.startsWith('|')) break;
    rows.push(
      l
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((c) => c.trim().replace(/^`|`$/g, '')),
    );
  }
  return rows.map(([name = '', flag = '', env = '', config = '']) => ({ name, flag, env, config }));
}

/** Every NABLA_* variable the sources of every package read (`env.X`, `env['X']`, `ENV = 'X'`). */
function nablaVariablesInCode(): string[] {
  const found = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir)) {
      const p = join(dir, e);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) {
        for (const m of readFileSync(p, 'utf8').matchAll(
          /\benv(?:\?)?\.(NABLA_[A-Z0-9_]+)|'(NABLA_BUILD_[A-Z0-9_]+)'/g,
        ))
          found.add((m[1] ?? m[2]) as string);
      }
    }
  };
  for (const pkg of readdirSync(join(repoRoot, 'packages'))) {
    if (pkg === 'testing') continue; // the test services' own switches, not nabla-build's
    const src = join(repoRoot, 'packages', pkg, 'src');
    try {
      walk(src);
    } catch {}
  }
  return [...found].sort();
}

describe('settings: one list, documented and shown with their sources', () => {
  it("the README's settings table is exactly the code's list of settings", () => {
    const table = readmeTable();
    expect(table).toEqual(
      SETTINGS.map((s) => ({ name: s.name, flag: s.flag ?? '', env: s.env ?? '', config: s.config ?? '' })),
    );
  });

  it('every NABLA_* variable the code reads is in the list (and so in --help and the README)', async () => {
    const listed = new Set(SETTINGS.map((s) => s.env).filter(Boolean));
    const missing = nablaVariablesInCode().filter((v) => !listed.has(v));
    expect(missing).toEqual([]);
    const help = await cli(['--help']);
    expect(help.exitCode).toBe(0);
    for (const s of SETTINGS) if (s.env) expect(help.stdout).toContain(s.env);
  });

  it('config shows each layer: project file < user config < environment < flags, secrets masked', async () => {
    const root = tmp();
    const sub = join(root, 'a', 'b');
    mkdirSync(sub, { recursive: true });
    mkdirSync(join(root, 'overlay'));
    writeFileSync(
      join(root, 'nabla-build.yaml'),
      'namespace: team\nregistry: registry.example.org\nprogress: plain\nrecipes: [overlay]\ncacheDir: .cache\n',
    );
    const user = join(root, 'user.yaml');
    writeFileSync(
      user,
      "namespace: me\nmirrors:\n  - { prefix: 'https://github.com/', replace: 'https://bob:s3cret@git.example.org/' }\n",
    );
    const env = { NABLA_BUILD_CONFIG: user, NABLA_REGISTRY_PASSWORD: 'hunter2', NABLA_REGISTRY_USER: 'bob' };
    const c = await configOf([], { cwd: sub, env });
    expect(c.projectConfig).toEqual({ name: 'projectConfig', value: join(root, 'nabla-build.yaml'), source: 'found' });
    expect(c.registry).toMatchObject({ value: 'registry.example.org', source: join(root, 'nabla-build.yaml') });
    expect(c.namespace).toMatchObject({ value: 'me', source: user });
    expect(c.progress).toMatchObject({ value: 'plain', source: join(root, 'nabla-build.yaml') });
    expect(c.cacheDir).toMatchObject({ value: join(root, '.cache') });
    expect(c.recipes?.value).toBe(`${join(repoRoot, 'recipes')} ${join(root, 'overlay')}`);
    expect(c.registryPassword).toEqual({
      name: 'registryPassword',
      value: '********',
      source: 'NABLA_REGISTRY_PASSWORD',
    });
    expect(c.registryUser).toMatchObject({ value: 'bob', source: 'NABLA_REGISTRY_USER' });
    expect(c.mirrors?.value).toContain('https://****@git.example.org/');
    const all = JSON.stringify(c);
    expect(all).not.toContain('hunter2');
    expect(all).not.toContain('s3cret');
    // The environment beats both files, flags beat the environment.
    const e = await configOf(['--progress', 'quiet', '--cache-dir', join(root, 'flag-cache')], {
      cwd: sub,
      env: { ...env, NABLA_BUILD_REPO: '127.0.0.1:5000/ci', NABLA_BUILD_PROGRESS: 'tty' },
    });
    expect(e.registry).toMatchObject({ value: '127.0.0.1:5000', source: 'NABLA_BUILD_REPO' });
    expect(e.namespace).toMatchObject({ value: 'ci', source: 'NABLA_BUILD_REPO' });
    expect(e.progress).toMatchObject({ value: 'quiet', source: '--progress' });
    expect(e.cacheDir).toMatchObject({ value: join(root, 'flag-cache'), source: '--cache-dir' });
    const q = await configOf(['--quiet'], { cwd: sub, env: { ...env, NABLA_BUILD_PROGRESS: 'tty' } });
    expect(q.progress).toMatchObject({ value: 'quiet', source: '--quiet' });
    // A table for people, on stdout.
    const text = await cli(['config'], { cwd: sub, env });
    expect(text.stdout).toMatch(/^namespace\s+me\s+\S*user\.yaml$/m);
    expect(text.stderr).toBe('');
  });

  it('NABLA_BUILD_REPO names the pushed images; a bad value is exit 2 naming the variable', async () => {
    const r = await cli(['build', 'hello', '--push', '--dry-run', '--no-test', '--json'], {
      env: { NABLA_BUILD_REPO: '127.0.0.1:5000/team' },
      cwd: tmp(),
    });
    expect(r.exitCode, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { published: { kind: string; reference: string }[] };
    expect(j.published.map((p) => p.kind)).toEqual(['push']);
    expect(j.published[0]?.reference).toMatch(/^127\.0\.0\.1:5000\/team\/lkl-nabla-hello-base:1\.0\.0-[0-9a-f]{12}$/);
    const hub = await cli(['build', 'hello', '--push', '--dry-run', '--no-test'], {
      env: { NABLA_BUILD_REPO: 'myuser' },
      cwd: tmp(),
    });
    expect(hub.stdout).toMatch(/^docker\.io\/myuser\/lkl-nabla-hello-base:1\.0\.0-[0-9a-f]{12}$/m);
    const bad = await cli(['config'], { env: { NABLA_BUILD_REPO: 'Bad Repo!' }, cwd: tmp() });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toMatch(
      /^error: NABLA_BUILD_REPO: NABLA_BUILD_REPO="Bad Repo!": expected registry\[\/namespace\]/m,
    );
    expect(bad.stdout).toBe('');
    const progress = await cli(['config'], { env: { NABLA_BUILD_PROGRESS: 'fancy' }, cwd: tmp() });
    expect(progress.exitCode).toBe(2);
    expect(progress.stderr).toContain('NABLA_BUILD_PROGRESS: "fancy" is not one of auto, tty, plain, quiet');
  });

  it('a project file with a mistake is reported file:line: field, exit 2', async () => {
    const root = tmp();
    writeFileSync(join(root, 'nabla-build.yaml'), 'namespace: ok\nprogres: plain\n');
    const r = await cli(['list'], { cwd: root });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/^error: \S*nabla-build\.yaml:\d+: unknown field "progres"$/m);
    expect(r.stdout).toBe('');
  });
});
