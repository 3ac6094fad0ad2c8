import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireDocker } from '@nabla-build/testing';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINGERPRINT_ENV, recordStamp, tryFastPath } from '../src/fast-path.js';
import { SETTINGS } from '../src/settings/catalog.js';
import { type FixtureWorld, fixtureWorld } from './fixture-env.js';
import { repoRoot } from './helpers.js';

/**
 * The up-to-date check is only worth having if it is never stale: every input of the plan, flipped on its own,
 * must send the command line to the full CLI (a rebuild or a re-check), never replay "up to date".
 */
describe('up-to-date check: every plan input flips it', () => {
  const root = mkdtempSync(join(tmpdir(), 'nb-fast-'));
  const recipes = join(root, 'project', 'recipes');
  const patches = join(root, 'project', 'patches');
  const cache = join(root, 'cache');
  const bin = join(root, 'bin');
  const entry = join(cache, 'steps', 'image', 'hello-0123');
  const key = 'a'.repeat(64);
  const argv = ['hello', '--no-load'];
  let env: NodeJS.ProcessEnv;

  /** Runs the check with `e`; what it printed and its answer (0 = up to date, undefined = full CLI). */
  const check = async (e: NodeJS.ProcessEnv = env, args: string[] = argv) => {
    let out = '';
    let err = '';
    const code = await tryFastPath(args, e, { out: (t) => (out += t), err: (t) => (err += t) });
    return { code, out, err };
  };

  beforeAll(async () => {
    mkdirSync(recipes, { recursive: true });
    writeFileSync(join(recipes, 'nabla.lock'), 'version: 1\n');
    writeFileSync(join(recipes, 'hello.yaml'), 'name: hello\n');
    mkdirSync(join(patches, 'hello'), { recursive: true });
    writeFileSync(join(patches, 'hello', '0001-fix.patch'), 'a patch\n');
    writeFileSync(join(root, 'config.yaml'), 'mirrors: []\n');
    mkdirSync(join(entry, 'out'), { recursive: true });
    writeFileSync(join(entry, 'out', 'image'), 'twelve bytes');
    writeFileSync(
      join(entry, 'entry.json'),
      JSON.stringify({
        key,
        step: 'image:hello',
        roots: ['out'],
        files: [{ path: 'out/image', size: 12, sha256: '', type: 'file' }],
        result: {},
      }),
    );
    // A compiler of our own on PATH, so the test can change it.
    mkdirSync(bin);
    writeFileSync(join(bin, 'cc'), '#!/bin/sh\necho cc 1.0\n');
    chmodSync(join(bin, 'cc'), 0o755);
    env = {
      PATH: `${bin}:/usr/bin:/bin`,
      HOME: root,
      NABLA_BUILD_RECIPES: recipes,
      NABLA_BUILD_CONFIG: join(root, 'config.yaml'),
      NABLA_BUILD_CACHE: cache,
    };
    await recordStamp(argv, env, { entries: [{ dir: entry, key }], images: [], stdout: 'the table\n' });
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('answers the unchanged command line from its stamp, replaying stdout', async () => {
    const r = await check();
    expect(r).toEqual({
      code: 0,
      out: 'the table\n',
      err: 'nabla-build: hello up to date (1 cached images, nothing to do)\n',
    });
    // `build` spelled out, -j and a repeated target are the same command line.
    expect((await check(env, ['build', 'hello', '-j', '3', '--no-load', 'hello'])).code).toBe(0);
  });

  it('every variable the CLI reads (the settings catalog), set, changed or unset, is a miss', async () => {
    const vars = SETTINGS.flatMap((s) => (s.env && s.name !== 'noFastPath' ? [s.env] : []));
    expect(vars).toContain('NABLA_BUILD_CANONICAL_ROOT');
    expect(vars.length).toBeGreaterThan(20);
    for (const k of [...vars, 'PATH']) {
      expect(FINGERPRINT_ENV).toContain(k);
      const variants = env[k] === undefined ? ['/x', 'off', ''] : [`${env[k]}-changed`, undefined];
      for (const v of variants) {
        expect((await check({ ...env, [k]: v })).code, `${k}=${v}`).toBeUndefined();
      }
    }
    expect((await check({ ...env, NABLA_BUILD_CANONICAL_ROOT: 'off' })).code).toBeUndefined();
    expect((await check()).code).toBe(0);
  });

  it('every file the plan reads, changed, added or removed, is a miss', async () => {
    const edits: [string, string, string | undefined][] = [
      ['a recipe', join(recipes, 'hello.yaml'), 'name: hello\nversion: 2\n'],
      ['a new recipe', join(recipes, 'other.yaml'), 'name: other\n'],
      ['the lockfile', join(recipes, 'nabla.lock'), 'version: 1\n# changed\n'],
      ['a patch', join(patches, 'hello', '0001-fix.patch'), 'another patch\n'],
      ['a new patch', join(patches, 'hello', '0002-more.patch'), 'more\n'],
      ['a removed patch', join(patches, 'hello', '0001-fix.patch'), undefined],
      ['the user config', join(root, 'config.yaml'), 'mirrors: []\nallowLocal: true\n'],
      ['the compiler', join(bin, 'cc'), '#!/bin/sh\necho cc 2.0\n'],
    ];
    for (const [what, file, content] of edits) {
      let before: Buffer | undefined;
      try {
        before = readFileSync(file);
      } catch {
        before = undefined;
      }
      if (content === undefined) rmSync(file);
      else writeFileSync(file, content);
      expect((await check()).code, what).toBeUndefined();
      if (before === undefined) rmSync(file);
      else writeFileSync(file, before);
      if (what !== 'the compiler') expect((await check()).code, `${what} restored`).toBe(0);
    }
  });

  it('an entry that no longer passes the store check, or holds another key, is a miss', async () => {
    await recordStamp(argv, env, { entries: [{ dir: entry, key }], images: [], stdout: 'the table\n' });
    expect((await check()).code).toBe(0);
    const image = join(entry, 'out', 'image');
    writeFileSync(image, 'thirteen byte');
    expect((await check()).code).toBeUndefined();
    writeFileSync(image, 'twelve bytes');
    const manifest = readFileSync(join(entry, 'entry.json'), 'utf8');
    writeFileSync(join(entry, 'entry.json'), manifest.replace(key, 'b'.repeat(64)));
    expect((await check()).code).toBeUndefined();
    rmSync(join(entry, 'entry.json'));
    expect((await check()).code).toBeUndefined();
    writeFileSync(join(entry, 'entry.json'), manifest);
    expect((await check()).code).toBe(0);
  });

  it('--recipes, --config and --cache-dir as flags resolve as in the full CLI; another directory or file is a miss', async () => {
    const config = join(root, 'config.yaml');
    const flags = ['hello', '--no-load', '--recipes', recipes, '--config', config, `--cache-dir=${cache}`];
    // Nothing from the environment: the flags say where everything is.
    const bare = { PATH: env.PATH, HOME: root };
    await recordStamp(flags, bare, { entries: [{ dir: entry, key }], images: [], stdout: 'the table\n' });
    expect((await check(bare, flags)).code).toBe(0);
    // The same settings given through the environment are the same plan.
    expect((await check(env, ['hello', '--no-load', `--cache-dir=${cache}`])).code).toBe(0);
    const otherRecipes = join(root, 'other-recipes');
    cpSync(recipes, otherRecipes, { recursive: true });
    const otherConfig = join(root, 'other.yaml');
    writeFileSync(otherConfig, 'mirrors: []\nallowLocal: true\n');
    const overlay = join(root, 'overlay');
    mkdirSync(overlay, { recursive: true });
    writeFileSync(join(overlay, 'extra.yaml'), 'name: extra\n');
    for (const changed of [
      ['hello', '--no-load', '--recipes', otherRecipes, '--config', config, `--cache-dir=${cache}`],
      ['hello', '--no-load', '--recipes', recipes, '--recipes', overlay, '--config', config, `--cache-dir=${cache}`],
      ['hello', '--no-load', '--recipes', recipes, '--config', otherConfig, `--cache-dir=${cache}`],
      ['hello', '--no-load', '--recipes', recipes, '--config', config, `--cache-dir=${join(root, 'elsewhere')}`],
      ['hello', '--no-load', '--recipes', recipes, '--config', join(root, 'missing.yaml'), `--cache-dir=${cache}`],
    ])
      expect((await check(bare, changed)).code, changed.join(' ')).toBeUndefined();
    // A file under the flagged recipe directory, changed, is a miss too.
    writeFileSync(join(recipes, 'hello.yaml'), 'name: hello\nversion: 3\n');
    expect((await check(bare, flags)).code).toBeUndefined();
    writeFileSync(join(recipes, 'hello.yaml'), 'name: hello\n');
    expect((await check(bare, flags)).code).toBe(0);
  });

  it('another command line, or the default one without a stamp of its own, goes to the full CLI', async () => {
    expect((await check()).code).toBe(0);
    for (const args of [
      ['hello'],
      ['hello', 'world', '--no-load'],
      ['hello', '--no-load', '--offline'],
      ['hello', '--no-load', '--compression', 'none'],
      ['plan', 'hello'],
      ['hello', '--no-load', '--cache-dir', join(root, 'elsewhere')],
    ])
      expect((await check(env, args)).code, args.join(' ')).toBeUndefined();
    expect((await check({ ...env, NABLA_BUILD_NO_FAST_PATH: '1' })).code).toBeUndefined();
    // A project file in the working directory is a settings layer the check does not resolve.
    const cwd = process.cwd();
    writeFileSync(join(root, 'nabla-build.yaml'), 'mirrors: []\n');
    try {
      process.chdir(root);
      expect((await check()).code).toBeUndefined();
    } finally {
      process.chdir(cwd);
      rmSync(join(root, 'nabla-build.yaml'));
    }
    expect((await check()).code).toBe(0);
  });

  it('every nabla-build variable read in the product packages is in the settings catalog (so in the fingerprint)', () => {
    const catalog = new Set(SETTINGS.flatMap((s) => (s.env ? [s.env] : [])));
    const packages = join(repoRoot, 'packages');
    const read = new Set<string>();
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        if (e.isDirectory()) walk(join(dir, e.name));
        else if (e.name.endsWith('.ts'))
          for (const m of readFileSync(join(dir, e.name), 'utf8').matchAll(
            /\bNABLA_(?:BUILD|REGISTRY)_[A-Z_]*[A-Z]\b/g,
          ))
            read.add(m[0]);
      }
    };
    for (const pkg of readdirSync(packages)) if (pkg !== 'testing') walk(join(packages, pkg, 'src'));
    expect(read.size).toBeGreaterThan(10);
    expect([...read].filter((v) => !catalog.has(v)).sort()).toEqual([]);
  });
});

describe('up-to-date check on the default command line (images loaded into the engine)', () => {
  let world: FixtureWorld;
  beforeAll(async () => {
    world = await fixtureWorld();
  });
  afterAll(async () => {
    await world?.upstreams.close();
  });

  it('answers only while the engine has the image under every tag; a removed tag is loaded again', async (ctx) => {
    const services = requireDocker(ctx);
    // A namespace of its own: removing a tag here never touches the image another test is running.
    const config = join(mkdtempSync(join(tmpdir(), 'nb-fast-config-')), 'config.yaml');
    writeFileSync(config, `${readFileSync(world.upstreams.configFile, 'utf8')}\nnamespace: nb-fast-path\n`);
    const env = { DOCKER_HOST: services.dockerHost, NABLA_BUILD_CONFIG: config };
    const cache = world.newCache();
    const first = await world.run(['hello'], { cache, env });
    expect(first.exitCode, first.stderr).toBe(0);
    const ref = first.stdout.trim().split('\n').pop() as string;
    expect(ref).toMatch(/^docker\.io\/nb-fast-path\/lkl-nabla-hello-base:1\.0\.0-[0-9a-f]{12}$/);
    const again = await world.run(['hello'], { cache, env });
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/hello up to date \(1 cached images, loaded under all \d+ tags, nothing to do\)/);
    expect(again.stdout).toBe(first.stdout);
    // Another engine (none answers at this address): the full CLI decides.
    const elsewhere = await world.run(['hello'], { cache, env: { ...env, DOCKER_HOST: 'unix:///nonexistent.sock' } });
    expect(elsewhere.stderr).not.toContain('up to date (');
    execFileSync('docker', ['rmi', ref], { env: { ...process.env, ...env }, stdio: 'ignore' });
    const reload = await world.run(['hello'], { cache, env });
    expect(reload.exitCode, reload.stderr).toBe(0);
    expect(reload.stderr).not.toContain('up to date (');
    const inspect = await execa('docker', ['image', 'inspect', ref], { env, reject: false });
    expect(inspect.exitCode).toBe(0);
    expect((await world.run(['hello'], { cache, env })).stderr).toContain('up to date');
    // The canonical-root switch changes toolchain and package keys: never answered from the old stamp.
    const hostRoot = await world.run(['hello'], { cache, env: { ...env, NABLA_BUILD_CANONICAL_ROOT: 'off' } });
    expect(hostRoot.exitCode, hostRoot.stderr).toBe(0);
    expect(hostRoot.stderr).not.toContain('up to date (');
  });
});
