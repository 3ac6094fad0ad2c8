import { mkdtempSync } from 'node:fs';
import { access, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandError, run } from '@nabla-build/exec';
import type { ToolchainRecipe } from '@nabla-build/model';
import { loadRecipes } from '@nabla-build/recipes';
import { createFixtureUpstreams, type FixtureUpstreams, repositoryRoot } from '@nabla-build/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildToolchain } from '../src/index.js';
import { checkoutFrankenlibc } from './helpers.js';

// NetBSD's host tools (nbmake) define globals in a header: they link only with -fcommon on GCC >= 10. The
// fixture frankenlibc's buildrump.sh builds such a tool with the host gcc and ${HOST_CFLAGS}, like upstream.
let fx: FixtureUpstreams;
let work: string;
let toolchain: ToolchainRecipe;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nabla-hosttools-'));
  fx = await createFixtureUpstreams(join(work, 'upstreams'));
  toolchain = loadRecipes(join(repositoryRoot(), 'recipes')).toolchains.get('frankenlibc') as ToolchainRecipe;
});

afterAll(async () => {
  await fx?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

/** The production recipe without the HOST_CFLAGS its build.sh command sets. */
function withoutHostCflags(recipe: ToolchainRecipe): ToolchainRecipe {
  return {
    ...recipe,
    commands: recipe.commands.map((c) => ({
      ...c,
      env: Object.fromEntries(Object.entries(c.env).filter(([k]) => k !== 'HOST_CFLAGS')),
    })),
  };
}

describe('NetBSD host tools on GCC >= 10 (fixture nbmake with a tentative definition in two objects)', () => {
  it('the host gcc itself rejects the fixture nbmake without -fcommon (the fixture fails like upstream)', async () => {
    const src = join(work, 'nbmake-src');
    await checkoutFrankenlibc(fx, src);
    const dir = join(src, 'src', 'usr.bin', 'make');
    for (const f of ['main.c', 'var.c']) await run('gcc', ['-O', '-c', join(dir, f)], { cwd: work });
    const err = await run('gcc', ['-O', '-o', 'nbmake', 'main.o', 'var.o'], { cwd: work }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as CommandError).tail.join('\n')).toMatch(/multiple definition of `debug_file'/);
  });

  it('without the recipe’s HOST_CFLAGS nbmake does not link: the error names debug_file and the hint -fcommon', async () => {
    const tree = join(work, 'frankenlibc-no-fcommon');
    await checkoutFrankenlibc(fx, tree);
    const logFile = join(work, 'logs', 'no-fcommon.log');
    const err = await buildToolchain({
      baseEnv: process.env,
      recipe: withoutHostCflags(toolchain),
      treeDir: tree,
      jobs: 2,
      logFile,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    const e = err as CommandError;
    expect(e.tail.join('\n')).toMatch(/multiple definition of `debug_file'/);
    expect(e.tail.join('\n')).toContain('ERROR: Build of nbmake failed');
    expect(e.hint).toContain('-fcommon');
    expect(e.hint).toContain('HOST_CFLAGS');
    expect(e.logPath).toBe(logFile);
  });

  it('with the production recipe nbmake links and runs, and the build goes on to LKL and beyond', async () => {
    const tree = join(work, 'frankenlibc-fcommon');
    await checkoutFrankenlibc(fx, tree);
    const logFile = join(work, 'logs', 'fcommon.log');
    await buildToolchain({ recipe: toolchain, treeDir: tree, jobs: 2, logFile, baseEnv: process.env });
    const log = await readFile(logFile, 'utf8');
    expect(log).toContain('-O -fcommon -o nbmake');
    expect(log).toContain('=== Linux build LKLSRC=');
    const nbmake = join(tree, 'rumpobj', 'tooldir', 'bin', 'nbmake');
    expect((await run(nbmake, ['-V', 'MAKE_VERSION'], { cwd: work })).stdout).toContain('20160926');
    await access(join(tree, 'rump', 'lib', 'libc.a'));
  });
});
