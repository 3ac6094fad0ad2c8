import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { projectCopy, useFixtureWorld } from './fixture-env.js';

// What a user (or a CI log) sees while and after steps run, against the fixture upstreams. The CLI runs with
// CI=true (helpers.ts), so progress uses the plain renderer.
const world = useFixtureWorld();
let scratch: string;
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'nb-ci-output-'));
});

const toolchainDirs = (cache: string) => {
  const dir = join(cache, 'steps', 'toolchain');
  return existsSync(dir) ? readdirSync(dir).filter((d) => d.startsWith('frankenlibc-')) : [];
};

describe('long native steps talk on the plain renderer', () => {
  it('a line per phase and a heartbeat with elapsed time and the last output line while build.sh is quiet', async () => {
    const cache = world.newCache();
    const r = await world.run(['hello', '--no-load'], {
      cache,
      env: { NABLA_FIXTURE_SLEEP: 'buildrump:4', NABLA_BUILD_HEARTBEAT_SECONDS: '1' },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/toolchain frankenlibc: buildrump: NetBSD tools and LKL \(at \d+s\)/);
    const beats = r.stderr
      .split('\n')
      .filter((l) => /toolchain frankenlibc: still running, \d+s elapsed; buildrump: NetBSD tools and LKL/.test(l));
    // 4 s of silence with a 1 s interval: several heartbeats naming the line build.sh printed last (later ones,
    // on a loaded machine, may name the next command already).
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(
      beats.filter((b) => b.includes('last output: >> fixture: sleeping 4s in phase buildrump')).length,
    ).toBeGreaterThanOrEqual(2);
  });

  it('no heartbeat for a step that is not quiet for a whole interval (the default is 60 s)', async () => {
    const cache = world.newCache();
    const r = await world.run(['hello', '--no-load'], { cache, env: { NABLA_FIXTURE_SLEEP: 'buildrump:2' } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('still running');
    expect(r.stderr).toContain('toolchain frankenlibc: buildrump: NetBSD tools and LKL (at ');
  });
});

describe('failed steps', () => {
  it('a failed toolchain attempt is removed, its log kept and named once; the error does not repeat itself', async () => {
    const cache = world.newCache();
    const r = await world.run(['hello', '--no-load'], { cache, env: { NABLA_FIXTURE_FAIL: 'musl' } });
    expect(r.exitCode).toBe(1);
    expect(toolchainDirs(cache)).toEqual([]);
    const log = /full log: (\S+)/.exec(r.stderr)?.[1] as string;
    expect(readFileSync(log, 'utf8')).toContain("redefinition of '__stack_chk_fail'");
    const error = r.stderr.split('\n').find((l) => l.startsWith('error: ')) as string;
    expect(error).toMatch(/^error: building toolchain frankenlibc \(/);
    expect(error).not.toMatch(/building toolchain frankenlibc: building toolchain frankenlibc/);
    expect(error).not.toContain(join(cache, 'steps'));
  });

  it('--keep-failed keeps the failed tree of the resumable toolchain step and says where', async () => {
    const cache = world.newCache();
    const r = await world.run(['hello', '--no-load', '--keep-failed'], {
      cache,
      env: { NABLA_FIXTURE_FAIL: 'musl' },
    });
    expect(r.exitCode).toBe(1);
    const [kept] = toolchainDirs(cache);
    expect(kept).toBeDefined();
    const dir = join(cache, 'steps', 'toolchain', kept as string);
    expect(r.stderr).toContain(`toolchain frankenlibc: the failed attempt's tree is kept in ${dir}`);
    expect(existsSync(join(dir, 'tree', 'build.sh'))).toBe(true);
  });

  it('a failed patch step prints its log path and a hint for a project patch, not a path into the removed tree', async () => {
    const p = projectCopy();
    const patch = join(p.patches, 'solo5', '0001-configure-accept-gcc-10-and-newer.patch');
    writeFileSync(patch, readFileSync(patch, 'utf8').replace(' cc_maybe_gcc()\n {', ' cc_maybe_gcc_renamed()\n {'));
    const cache = world.newCache();
    // --unlocked: with the lockfile, the edited patch is refused before anything runs (faults-hostile.test.ts).
    const r = await world.run(['hello', '--no-load', '--unlocked', '--recipes', p.recipes], { cache });
    expect(r.exitCode).toBe(1);
    const log = /full log: (\S+)/.exec(r.stderr)?.[1] as string;
    expect(log).toContain(join(cache, 'logs'));
    expect(existsSync(log)).toBe(true);
    const hint = /hint: (.*)/.exec(r.stderr)?.[1] as string;
    // A conflict says "refresh the project patch", a loose fit "apply it …": both name the Solo5 commit and how
    // to check it out.
    expect(hint).toMatch(/(refresh the project patch against|the patch still applies loosely to) frankenlibc\/solo5@/);
    expect(hint).toContain('git clone https://github.com/Solo5/solo5.git t && git -C t checkout ');
    expect(hint).not.toContain(join(cache, 'steps'));
  });
});

describe('fetch', () => {
  it('tries every source and reports all missing ones at the end, each with its log', async () => {
    const text = readFileSync(world.upstreams.configFile, 'utf8');
    let config = text;
    for (const name of ['python', 'zlib']) {
      const line = new RegExp(`^ {2}"${name}": \\{ url: "[^"]+"`, 'm');
      expect(config).toMatch(line);
      config = config.replace(line, `  "${name}": { url: "${world.upstreams.server.url}/gone-${name}.tar.gz"`);
    }
    const file = join(scratch, 'two-missing.yaml');
    writeFileSync(file, config);
    const cache = world.newCache();
    const r = await world.run(['fetch', 'python3'], { cache, env: { NABLA_BUILD_CONFIG: file } });
    expect(r.exitCode).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('error: '));
    expect(errors.some((l) => l.includes('gone-python.tar.gz'))).toBe(true);
    expect(errors.some((l) => l.includes('gone-zlib.tar.gz'))).toBe(true);
    expect(errors.at(-1)).toMatch(/^error: 2 steps failed: .*fetch:python.*fetch:zlib|fetch:zlib.*fetch:python/);
    expect(r.stderr.match(/full log: /g)?.length).toBeGreaterThanOrEqual(2);
    // Everything else was fetched all the same.
    const plan = JSON.parse(
      (await world.run(['plan', 'python3', '--json'], { cache, env: { NABLA_BUILD_CONFIG: file } })).stdout,
    ) as { steps: { id: string; status: string }[] };
    const fetched = plan.steps.filter((s) => s.id.startsWith('fetch:') && s.status === 'cached').map((s) => s.id);
    expect(fetched).toEqual(expect.arrayContaining(['fetch:rumprun-packages', 'fetch:sqlite']));
  });
});
