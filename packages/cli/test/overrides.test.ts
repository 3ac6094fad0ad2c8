import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '@nabla-build/exec';
import { FIXTURE_GIT_ENV } from '@nabla-build/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { projectCopy, useFixtureWorld } from './fixture-env.js';
import { repoRoot } from './helpers.js';

const world = useFixtureWorld();
let scratch: string;
beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'nb-overrides-'));
});

const git = (cwd: string, args: string[]) =>
  run('git', ['-c', 'protocol.file.allow=always', ...args], { cwd, env: FIXTURE_GIT_ENV });

/** A fork of the fixture lkl-linux with one more commit (a marker in the header LKL installs), as a local repo. */
async function forkLinux(): Promise<{ dir: string; rev: string }> {
  const dir = join(scratch, 'lkl-linux-fork');
  await git('/', ['clone', '-q', world.upstreams.repos.linux.url, dir]);
  const header = join(dir, 'tools', 'lkl', 'include', 'lkl_host.h');
  writeFileSync(header, `${readFileSync(header, 'utf8')}\n#define LKL_FORK_MARKER 1\n`);
  await git(dir, ['-c', 'user.name=fork', '-c', 'user.email=fork@localhost', 'commit', '-q', '-am', 'fork: marker']);
  return { dir, rev: (await git(dir, ['rev-parse', 'HEAD'])).stdout.trim() };
}

/** The fixture config with `frankenlibc/linux` pointing at `git`@`rev`. */
function configWithLinux(git: string, rev: string): string {
  const text = readFileSync(world.upstreams.configFile, 'utf8');
  const line = /^ {2}"frankenlibc\/linux": \{.*\}$/m;
  expect(text).toMatch(line);
  const file = join(scratch, `config-${rev.slice(0, 8)}.yaml`);
  writeFileSync(file, text.replace(line, `  "frankenlibc/linux": { git: ${JSON.stringify(git)}, rev: "${rev}" }`));
  return file;
}

/** Every file named `name` below `dir`. */
async function findAll(dir: string, name: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }))
    if (e.isFile() && e.name === name) out.push(join(e.parentPath, e.name));
  return out;
}

const toolchainKey = async (cache: string, config: string) => {
  const r = await world.run(['plan', 'hello', '--json'], { cache, env: { NABLA_BUILD_CONFIG: config } });
  expect(r.exitCode, r.stderr).toBe(0);
  const plan = JSON.parse(r.stdout) as { steps: { id: string; kind: string; key: string }[] };
  return plan.steps.filter((s) => s.kind === 'patch' || s.kind === 'toolchain').map((s) => `${s.id}=${s.key}`);
};

describe('per-submodule overrides', () => {
  it('an override of frankenlibc/linux (another repository and commit than the gitlink) builds the toolchain with it, and is part of the keys', async () => {
    const fork = await forkLinux();
    const config = configWithLinux(fork.dir, fork.rev);
    const cache = world.newCache();
    const plain = await toolchainKey(cache, world.upstreams.configFile);
    const overridden = await toolchainKey(cache, config);
    // The full frankenlibc checkout and its build change key; steps that only see Solo5 do not (when the plan has
    // them).
    const keyOf = (list: string[], id: string) => list.find((k) => k.startsWith(`${id}=`));
    for (const id of ['patch:frankenlibc', 'toolchain:frankenlibc']) {
      expect(keyOf(overridden, id), id).toBeDefined();
      expect(keyOf(overridden, id)).not.toBe(keyOf(plain, id));
    }
    for (const k of overridden.filter((x) => /solo5/.test(x.split('=')[0] as string))) expect(plain).toContain(k);

    const r = await world.run(['hello', '--no-load'], { cache, env: { NABLA_BUILD_CONFIG: config } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).not.toContain('is not clean');
    // The header LKL installs into the toolchain comes from the fork.
    const installed = (await findAll(cache, 'lkl_host.h')).filter((p) => p.includes(join('rump', 'include')));
    expect(installed.length).toBeGreaterThan(0);
    for (const h of installed) expect(readFileSync(h, 'utf8')).toContain('LKL_FORK_MARKER');
  });

  it('lock --check under overrides says that overrides are active instead of asking to lock them', async () => {
    const r = await world.run(['lock', '--check', '--recipes', join(repoRoot, 'recipes')]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toContain('overrides are active (');
    expect(r.stderr).toContain('frankenlibc/linux');
    expect(r.stderr).not.toContain('run `nabla-build lock`');

    // Something that no override covers (a project patch) is still found out of date.
    const p = projectCopy();
    const patchDir = join(p.patches, 'solo5');
    const patch = join(patchDir, (await readdir(patchDir)).sort()[0] as string);
    writeFileSync(patch, `${readFileSync(patch, 'utf8')}\n`);
    const stale = await world.run(['lock', '--check', '--recipes', p.recipes]);
    expect(stale.exitCode).toBe(1);
    expect(stale.stderr).toContain('out of date apart from the overridden sources');
    expect(stale.stderr).toContain('overrides are active (');
  });
});
