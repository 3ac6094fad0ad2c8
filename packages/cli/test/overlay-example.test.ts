import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireDocker } from '@nabla-build/testing';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { useFixtureWorld } from './fixture-env.js';
import { binDir, cli, repoRoot } from './helpers.js';

const world = useFixtureWorld();

/** The shell block the README gives after `<!-- example: overlay`, verbatim. */
function readmeExample(): string {
  const text = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const at = text.indexOf('<!-- example: overlay');
  expect(at, 'README.md has the overlay example').toBeGreaterThan(0);
  const m = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
  return m?.[1] as string;
}

/** A newcomer's C program in its own git repository, outside the nabla-build checkout. */
async function userRepo(message: string): Promise<string> {
  const root = mkdtempSync(join(tmpdir(), 'nb-user-'));
  const repo = join(root, 'myapp');
  mkdirSync(repo);
  writeFileSync(
    join(repo, 'hello.c'),
    `#include <stdio.h>\nint main(int argc, char **argv) {\n  printf("${message} (%d args)\\n", argc - 1);\n  return 0;\n}\n`,
  );
  const git = (...a: string[]) =>
    execa('git', a, {
      cwd: repo,
      env: { GIT_AUTHOR_DATE: '2020-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2020-01-01T00:00:00Z' },
    });
  await git('init', '-q', '-b', 'main');
  await git('add', 'hello.c');
  await git('-c', 'user.name=Newcomer', '-c', 'user.email=new@example.org', 'commit', '-q', '-m', 'hello');
  return root;
}

describe('your own target, following the README alone', () => {
  it('the README overlay example builds an out-of-tree C program with one command; docker runs it', async (ctx) => {
    const services = requireDocker(ctx);
    const root = await userRepo('hello from my own program');
    const cache = world.newCache();
    const env = {
      ...process.env,
      CI: 'true',
      PATH: `${binDir()}:${process.env.PATH}`,
      // The user config points the shipped sources at the fixture upstreams (no network in tests).
      NABLA_BUILD_CONFIG: world.upstreams.configFile,
      NABLA_BUILD_CACHE: cache,
      DOCKER_HOST: services.dockerHost,
    };
    const r = await execa('sh', ['-e', '-c', readmeExample()], { cwd: root, env, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    const ref = r.stdout.trim().split('\n').pop() as string;
    expect(ref).toMatch(/^myapp-nabla:0\.1\.0-[0-9a-f]{12}$/);
    const run = await execa('docker', ['run', '--rm', ref, 'a', 'b'], {
      env: { DOCKER_HOST: services.dockerHost },
      reject: false,
    });
    expect(run.exitCode, run.stderr).toBe(0);
    expect(run.stdout).toContain('hello from my own program (2 args)');
    // The overlay is visible where a newcomer looks: list and config (from the project directory).
    const project = join(root, 'myapp');
    const list = await cli(['list'], { cwd: project, env: { NABLA_BUILD_CONFIG: world.upstreams.configFile } });
    expect(list.stdout).toMatch(/^myapp\s+0\.1\.0\s+myapp-nabla\s/m);
    expect(list.stdout).toMatch(/^python3\s/m);
    const config = await cli(['config'], { cwd: project, env: { NABLA_BUILD_CONFIG: world.upstreams.configFile } });
    expect(config.stdout).toMatch(
      new RegExp(`^recipes\\s+\\S+/recipes ${join(project, 'nabla')}\\s+\\S+nabla-build\\.yaml$`, 'm'),
    );
    // The up-to-date check resolves the project file and its overlay as the full CLI does: answered, same reference.
    const again = await execa('nabla-build', ['myapp'], { cwd: project, env, reject: false });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout.trim().split('\n').pop()).toBe(ref);
    expect(again.stderr).toContain('up to date (');
    // The shipped lockfile is untouched by the overlay.
    expect(readFileSync(join(repoRoot, 'recipes', 'nabla.lock'), 'utf8')).not.toContain('myapp');
  });

  it('the up-to-date check tells a project file or an overlay apart, and answers each from its own stamp', async () => {
    const cache = world.newCache();
    const dir = mkdtempSync(join(tmpdir(), 'nb-fast-'));
    const env = { NABLA_BUILD_CONFIG: world.upstreams.configFile };
    const build = (extra: Record<string, string> = {}) =>
      cli(['hello', '--no-load', '--cache-dir', cache], { cwd: dir, env: { ...env, ...extra } });
    const first = await build();
    expect(first.exitCode, first.stderr).toBe(0);
    expect((await build()).stderr).toContain('up to date (');
    // A project file laying a changed hello over the shipped one: a real build with another image key.
    mkdirSync(join(dir, 'overlay'));
    const hello = readFileSync(join(repoRoot, 'recipes', 'hello.yaml'), 'utf8');
    writeFileSync(join(dir, 'overlay', 'hello.yaml'), hello.replace("RUMP_VERBOSE: '1'", "RUMP_VERBOSE: '0'"));
    writeFileSync(join(dir, 'nabla-build.yaml'), 'recipes: [overlay]\n');
    const layered = await build();
    expect(layered.exitCode, layered.stderr).toBe(0);
    expect(layered.stderr).not.toContain('up to date (');
    const key = (r: { stderr: string }) => /^image:hello\s+([0-9a-f]{16})/m.exec(r.stderr)?.[1];
    expect(key(layered)).toBeDefined();
    expect(key(layered)).not.toBe(key(first));
    expect((await build()).stderr).toContain('up to date (');
    // The same overlay through NABLA_BUILD_RECIPES: other settings, so the full CLI (the same image key);
    // without any overlay the first stamp answers again.
    rmSync(join(dir, 'nabla-build.yaml'));
    const viaEnv = await build({ NABLA_BUILD_RECIPES: join(dir, 'overlay') });
    expect(viaEnv.stderr).not.toContain('up to date (');
    expect(key(viaEnv)).toBe(key(layered));
    expect((await build()).stderr).toContain('up to date (');
  });

  it('--label merges over recipe labels:, --annotation lands on the manifest; --platform takes only linux/amd64', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nb-labels-'));
    mkdirSync(join(dir, 'overlay'));
    const hello = readFileSync(join(repoRoot, 'recipes', 'hello.yaml'), 'utf8');
    writeFileSync(
      join(dir, 'overlay', 'hello.yaml'),
      hello.replace('  copy:\n', '  labels: { com.example.tier: recipe, com.example.owner: recipe }\n  copy:\n'),
    );
    writeFileSync(join(dir, 'nabla-build.yaml'), 'recipes: [overlay]\n');
    const env = { NABLA_BUILD_CONFIG: world.upstreams.configFile };
    const cache = world.newCache();
    const layout = join(dir, 'layout');
    const r = await cli(
      [
        'hello',
        '--cache-dir',
        cache,
        '-o',
        `oci:${layout}`,
        '--label',
        'com.example.owner=cli',
        '--annotation',
        'org.opencontainers.image.vendor=ACME',
        '--platform',
        'linux/amd64',
      ],
      { cwd: dir, env },
    );
    expect(r.exitCode, r.stderr).toBe(0);
    const blob = (d: string) => JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', d.slice(7)), 'utf8'));
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = blob(index.manifests[0]?.digest as string) as {
      annotations?: Record<string, string>;
      config: { digest: string };
    };
    expect(manifest.annotations).toEqual({ 'org.opencontainers.image.vendor': 'ACME' });
    const labels = (blob(manifest.config.digest) as { config: { Labels: Record<string, string> } }).config.Labels;
    expect(labels['com.example.tier']).toBe('recipe');
    expect(labels['com.example.owner']).toBe('cli');
    expect(labels['dev.nabla-build.recipe']).toBe('hello');
    // Another label is another image key (never a stale cache hit).
    const plan = async (...extra: string[]) =>
      (
        JSON.parse(
          (await cli(['hello', '--dry-run', '--json', '--cache-dir', cache, ...extra], { cwd: dir, env })).stdout,
        ) as {
          steps: { id: string; key: string; cached: boolean }[];
        }
      ).steps.find((s) => s.id === 'image:hello');
    expect(
      (await plan('--label', 'com.example.owner=cli', '--annotation', 'org.opencontainers.image.vendor=ACME'))?.cached,
    ).toBe(true);
    expect((await plan('--label', 'com.example.owner=other'))?.cached).toBe(false);
    // Refusals: exit 2, one located line, nothing built.
    for (const [args, message] of [
      [['--platform', 'linux/arm64'], /--platform linux\/arm64: LKL Nabla images exist only for linux\/amd64/],
      [['--label', 'novalue'], /--label "novalue": expected key=value/],
      [['--label', 'dev.nabla-build.recipe=x'], /dev\.nabla-build\.\* labels record what the image holds/],
      [['--annotation', '=x'], /--annotation "=x": expected key=value/],
    ] as [string[], RegExp][]) {
      const bad = await cli(['hello', '--cache-dir', cache, '--no-load', ...args], { cwd: dir, env });
      expect(bad.exitCode, args.join(' ')).toBe(2);
      const errors = bad.stderr.split('\n').filter((l) => l.startsWith('error: '));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(message);
    }
  });

  it('--progress plain|quiet and --quiet shape stderr only; stdout and the exit code stay the same', async () => {
    const cache = world.newCache();
    const env = { NABLA_BUILD_CONFIG: world.upstreams.configFile, CI: '' };
    const fetch = (...extra: string[]) => cli(['fetch', 'hello', '--cache-dir', cache, ...extra], { env });
    const plain = await fetch('--progress', 'plain');
    expect(plain.exitCode, plain.stderr).toBe(0);
    expect(plain.stderr).toMatch(/fetch\s+frankenlibc/);
    expect(plain.stderr).toMatch(/^sources for hello are in /m);
    expect(plain.stdout).toBe('');
    const quiet = await cli(['fetch', 'hello', '--cache-dir', cache], {
      env: { ...env, NABLA_BUILD_PROGRESS: 'quiet' },
    });
    expect(quiet.exitCode).toBe(0);
    expect(quiet.stderr).not.toMatch(/fetch\s+frankenlibc/);
    expect(quiet.stderr).toMatch(/^sources for hello are in /m);
    const silent = await fetch('-q');
    expect(silent.exitCode).toBe(0);
    expect(silent.stderr).toBe('');
    expect(silent.stdout).toBe('');
    // Errors still reach stderr under --quiet.
    const failed = await cli(['fetch', 'hello', '--cache-dir', world.newCache(), '--offline', '-q'], { env });
    expect(failed.exitCode).toBe(1);
    expect(failed.stderr).toMatch(/^error: /m);
  });

  it('several --recipes: a later directory replaces a target of an earlier one', async () => {
    const a = mkdtempSync(join(tmpdir(), 'nb-ovl-a-'));
    const b = mkdtempSync(join(tmpdir(), 'nb-ovl-b-'));
    const hello = readFileSync(join(repoRoot, 'recipes', 'hello.yaml'), 'utf8');
    writeFileSync(join(a, 'hello.yaml'), hello.replace('version: 1.0.0', 'version: 2.0.0'));
    writeFileSync(join(b, 'hello.yaml'), hello.replace('version: 1.0.0', 'version: 3.0.0'));
    const list = async (...dirs: string[]) => {
      const r = await cli(['list', '--json', ...dirs.flatMap((d) => ['--recipes', d])], { cwd: tmpdir() });
      expect(r.exitCode, r.stderr).toBe(0);
      return (JSON.parse(r.stdout) as { name: string; version: string }[]).find((t) => t.name === 'hello')?.version;
    };
    expect(await list(a)).toBe('2.0.0');
    expect(await list(a, b)).toBe('3.0.0');
    expect(await list(b, a)).toBe('2.0.0');
    // Within one directory a duplicate is still an error, located.
    writeFileSync(join(b, 'zz-dup.yaml'), hello.replace('version: 1.0.0', 'version: 4.0.0'));
    const dup = await cli(['list', '--recipes', a, '--recipes', b], { cwd: tmpdir() });
    expect(dup.exitCode).toBe(2);
    expect(dup.stderr).toMatch(/zz-dup\.yaml:\d+: name: recipe "hello" is also defined in \S*hello\.yaml/);
  });

  it('cache du sizes the cache by kind and target; prune --unused removes what no plan reaches', async () => {
    const root = await userRepo('pruned');
    const project = join(root, 'myapp');
    const rev = (await execa('git', ['rev-parse', 'HEAD'], { cwd: project })).stdout.trim();
    mkdirSync(join(project, 'nabla'));
    writeFileSync(
      join(project, 'nabla', 'sources.yaml'),
      `kind: sources\nsources:\n  - name: myapp\n    git: file://${project}\n    rev: ${rev}\n`,
    );
    writeFileSync(
      join(project, 'nabla', 'myapp.yaml'),
      'kind: target\nname: myapp\nversion: 0.1.0\ntoolchain: frankenlibc\nsources: [myapp]\nbuild:\n  tree: myapp\nartifacts:\n  - { from: hello.c, to: hello.c }\n',
    );
    const cache = world.newCache();
    const inProject = await world.run(['fetch', 'hello', 'myapp', '--recipes', join(project, 'nabla')], { cache });
    expect(inProject.exitCode, inProject.stderr).toBe(0);
    const du = await world.run(['cache', 'du', '--json'], { cache });
    expect(du.exitCode, du.stderr).toBe(0);
    const usage = JSON.parse(du.stdout) as {
      total: number;
      steps: { kind: string; subject: string; entries: number; bytes: number }[];
      areas: { area: string; bytes: number }[];
    };
    expect(usage.steps).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'fetch', subject: 'myapp', entries: 1 }),
        expect.objectContaining({ kind: 'fetch', subject: 'frankenlibc', entries: 1 }),
      ]),
    );
    expect(usage.areas.find((a) => a.area === 'git')?.bytes).toBeGreaterThan(0);
    expect(usage.total).toBeGreaterThan(usage.steps.reduce((a, s) => a + s.bytes, 0));
    const text = await world.run(['cache', 'du'], { cache });
    expect(text.stdout).toMatch(/^fetch\s+myapp\s+1\s+\d/m);
    // Without the overlay nothing plans myapp: --unused lists it (dry run), then removes exactly it.
    const dry = await world.run(['cache', 'prune', '--unused', '--dry-run', '--json'], { cache });
    expect(dry.exitCode, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout) as { removed: { kind: string; subject: string; dir: string }[] };
    expect(planned.removed.map((r) => `${r.kind}:${r.subject}`)).toEqual(['fetch:myapp']);
    expect(existsSync(planned.removed[0]?.dir as string)).toBe(true);
    // The parsed-file cache (config, recipes, lockfile, host facts) only grows; a dry run keeps it, prune empties it.
    const parsed = join(cache, 'parsed');
    const parsedBefore = readdirSync(parsed);
    expect(parsedBefore.length).toBeGreaterThan(0);
    expect((JSON.parse(dry.stdout) as { derived: { files: number } }).derived.files).toBeGreaterThanOrEqual(
      parsedBefore.length,
    );
    const pruned = await world.run(['cache', 'prune', '--unused'], { cache });
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(pruned.stderr).toMatch(/removed 1 entry .*; and \d+ parsed-file and stamp cache files/);
    expect(existsSync(planned.removed[0]?.dir as string)).toBe(false);
    expect(readdirSync(parsed)).toEqual([]);
    const after = JSON.parse((await world.run(['cache', 'du', '--json'], { cache })).stdout) as typeof usage;
    expect(after.steps.some((s) => s.subject === 'myapp')).toBe(false);
    expect(after.steps.some((s) => s.subject === 'frankenlibc')).toBe(true);
    // --keep-last 1 keeps one entry per step: nothing to do; --older-than 0s would take everything (dry run).
    const keep = await world.run(['cache', 'prune', '--keep-last', '1', '--json'], { cache });
    expect((JSON.parse(keep.stdout) as { removed: unknown[] }).removed).toEqual([]);
    const old = await world.run(['cache', 'prune', '--older-than', '0s', '--dry-run', '--json'], { cache });
    expect((JSON.parse(old.stdout) as { removed: unknown[] }).removed).toHaveLength(after.steps.length);
    // Bad input: exit 2, one located message, nothing removed.
    for (const args of [['prune'], ['prune', '--older-than', 'soon'], ['prune', '--keep-last', '-1']]) {
      const r = await world.run(['cache', ...args], { cache });
      expect(r.exitCode, args.join(' ')).toBe(2);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('error: '))).toHaveLength(1);
    }
    expect((JSON.parse((await world.run(['cache', 'du', '--json'], { cache })).stdout) as typeof usage).steps).toEqual(
      after.steps,
    );
  });
});
