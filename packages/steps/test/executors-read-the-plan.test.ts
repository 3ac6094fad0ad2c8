import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const packages = join(import.meta.dirname, '..', '..');
/** Every .ts file under packages/<pkg>/src, subdirectories included. */
const allSources = (pkg: string) =>
  readdirSync(join(packages, pkg, 'src'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: `${pkg}/src/${f}`, text: readFileSync(join(packages, pkg, 'src', f), 'utf8') }));
const allPackages = readdirSync(packages).filter((p) => existsSync(join(packages, p, 'src')));
const sources = (pkg: string) =>
  readdirSync(join(packages, pkg, 'src'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => ({ file: `${pkg}/src/${f}`, text: readFileSync(join(packages, pkg, 'src', f), 'utf8') }));

/**
 * Executors read a step's typed inputs (planned by @nabla-build/plan, keyed) and their deps' results: they do
 * not look sources up in the recipes again, apply the user's overrides themselves or cast inputs.
 */
describe('executors read the plan', () => {
  const forbidden: [string, RegExp][] = [
    ['a second look-up of a source in the recipes', /findSource|\.sources\.find\(/],
    ['a recipe look-up', /env\.recipes|recipes\.(targets|toolchains)\.get/],
    ['the config overrides instead of the planned ones', /env\.overrides|config\.overrides/],
    ['a double cast', /as unknown as/],
    ['untyped inputs', /step\.inputs\s+as\b|inputs\.[a-zA-Z]+ as /],
    // A dependency's result is read through depOf/completedOf (typed by StepResults), never cast.
    ['a cast result of a dependency', /\.result\s+as\b|as CompletedStep\b/],
  ];
  // The planner reads recipes (that is its job); the executors only the plan.
  const rules: Record<string, [string, RegExp][]> = { steps: forbidden, plan: forbidden.slice(2) };
  for (const [pkg, rule] of Object.entries(rules)) {
    it(`${pkg}/src has none of: ${rule.map(([what]) => what).join('; ')}`, () => {
      const found = sources(pkg).flatMap(({ file, text }) =>
        rule.flatMap(([what, re]) =>
          text.split('\n').flatMap((line, i) => (re.test(line) ? [`${file}:${i + 1}: ${what}: ${line.trim()}`] : [])),
        ),
      );
      expect(found).toEqual([]);
    });
  }
});

describe('no package casts its way past the types', () => {
  it('packages/*/src has no double cast (as unknown as) and no findSource: use a type guard, a parse function, the plan', () => {
    expect(allPackages.length).toBeGreaterThan(10);
    const found = allPackages.flatMap((pkg) =>
      allSources(pkg).flatMap(({ file, text }) =>
        text
          .split('\n')
          .flatMap((line, i) => (/as unknown as|findSource/.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
      ),
    );
    expect(found).toEqual([]);
  });
});

describe('only the CLI reads the environment', () => {
  // Each file's count of `process.env` reads outside the CLI (issue 12). Switches, credentials, git's and the
  // native builds' environment and the launch PATH are passed in by the CLI. The list may only shrink: a file not
  // listed, or one with more reads than listed, fails; one with fewer must be updated here.
  const remaining: Record<string, number> = {
    // The one place a child process starts: without `cleanEnv` it inherits this process's environment (what any
    // spawn does), and adding or removing the caller's variables needs that set. Nothing decides on a variable
    // of it; native builds run with `cleanEnv` and the allow list of the environment the CLI passes.
    'exec/src/run.ts': 1,
  };
  it('packages/*/src outside cli and testing read process.env only where listed', () => {
    const counts: Record<string, number> = {};
    for (const pkg of allPackages.filter((p) => p !== 'cli' && p !== 'testing')) {
      for (const { file, text } of allSources(pkg)) {
        const n = text.split('\n').filter((l) => /process\.env\b/.test(l)).length;
        if (n > 0) counts[file] = n;
      }
    }
    expect(counts).toEqual(remaining);
  });
});
