import { join } from 'node:path';
import type { PlanStep, RecipeSet, TargetRecipe } from '@nabla-build/model';
import { planBuild, type PlanInput } from '@nabla-build/plan';
import { loadRecipes } from '@nabla-build/recipes';
import { describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '..', '..', '..');

function input(recipes: RecipeSet, patch = 'p1', targets = ['python3']): PlanInput {
  return {
    recipes,
    targets,
    lock: undefined,
    overrides: {},
    host: { arch: 'x86_64', cc: 'gcc (Debian 12.2.0-14) 12.2.0', buildRoot: 'canonical' },
    projectPatchDigests: { solo5: patch, runnc: 'r1' },
    sourceDateEpoch: 1600000000,
    publish: { load: true, push: false, outputs: [], naming: { extraTags: [] } },
  };
}

const keys = (steps: PlanStep[]) => Object.fromEntries(steps.map((s) => [s.id, s.key]));

describe('planBuild on the shipped recipes', () => {
  const recipes = loadRecipes(join(repo, 'recipes'));

  it('orders python3 from fetch through patch, toolchain, package and image to publish', () => {
    const plan = planBuild(input(recipes));
    const ids = plan.steps.map((s) => s.id);
    expect(ids).toEqual([
      'fetch:frankenlibc',
      'patch:frankenlibc',
      'toolchain:frankenlibc',
      'fetch:rumprun-packages',
      'patch:rumprun-packages',
      'fetch:python',
      'fetch:libressl',
      'fetch:sqlite',
      'fetch:zlib',
      'package:python3',
      'image:python3',
      'publish:python3',
    ]);
    for (const s of plan.steps) {
      expect(s.key).toMatch(/^[0-9a-f]{64}$/);
      for (const d of s.deps) expect(ids.indexOf(d)).toBeLessThan(ids.indexOf(s.id));
    }
    expect(plan.steps.find((s) => s.kind === 'publish')?.cacheable).toBe(false);
  });

  it('gives the same keys on every run', () => {
    expect(keys(planBuild(input(loadRecipes(join(repo, 'recipes')))).steps)).toEqual(
      keys(planBuild(input(recipes)).steps),
    );
  });

  it('a changed project patch changes the toolchain chain but not the fetches or the package tree', () => {
    const a = keys(planBuild(input(recipes, 'p1')).steps);
    const b = keys(planBuild(input(recipes, 'p2')).steps);
    const changed = Object.keys(a)
      .filter((id) => a[id] !== b[id])
      .sort();
    expect(changed).toEqual([
      'image:python3',
      'package:python3',
      'patch:frankenlibc',
      'publish:python3',
      'toolchain:frankenlibc',
    ]);
  });

  it('a changed image env value changes only the image and publish steps', () => {
    const edited: RecipeSet = { ...recipes, targets: new Map(recipes.targets) };
    const py = recipes.targets.get('python3') as TargetRecipe;
    const image = py.image as NonNullable<TargetRecipe['image']>;
    edited.targets.set('python3', { ...py, image: { ...image, env: { ...image.env, PYTHONHASHSEED: '2' } } });
    const a = keys(planBuild(input(recipes)).steps);
    const b = keys(planBuild(input(edited)).steps);
    expect(
      Object.keys(a)
        .filter((id) => a[id] !== b[id])
        .sort(),
    ).toEqual(['image:python3', 'publish:python3']);
  });

  it('world plans every base image with one shared toolchain', () => {
    const plan = planBuild(input(recipes, 'p1', ['world']));
    expect(plan.steps.filter((s) => s.kind === 'toolchain').map((s) => s.id)).toEqual(['toolchain:frankenlibc']);
    const withImage = [...recipes.targets.values()].filter((t) => t.image).map((t) => t.name);
    expect(plan.targets).toEqual(withImage.sort());
    expect(plan.targets).not.toContain('nabla-run');
    expect(plan.targets).not.toContain('runnc');
  });

  it('runtime targets have no image: the package step is final', () => {
    const plan = planBuild(input(recipes, 'p1', ['nabla-run', 'runnc']));
    expect(plan.steps.some((s) => s.kind === 'image')).toBe(false);
    expect(plan.steps.some((s) => s.id === 'package:nabla-run')).toBe(true);
    // runnc's own tree takes the project's runnc series in a patch step of its own.
    const runnc = plan.steps.find((s) => s.id === 'package:runnc');
    expect(runnc?.deps).toEqual(['toolchain:frankenlibc', 'patch:runnc@runnc']);
    const patch = plan.steps.find((s) => s.id === 'patch:runnc@runnc');
    expect(patch?.inputs.patches).toEqual([expect.objectContaining({ from: 'project', dir: 'runnc', digest: 'r1' })]);
  });

  it('an override changes the fetched commit and so every key downstream', () => {
    const a = keys(planBuild(input(recipes)).steps);
    const b = keys(planBuild({ ...input(recipes), overrides: { 'rumprun-packages': { rev: 'a'.repeat(40) } } }).steps);
    expect(a['fetch:frankenlibc']).toBe(b['fetch:frankenlibc']);
    expect(a['toolchain:frankenlibc']).toBe(b['toolchain:frankenlibc']);
    expect(a['fetch:rumprun-packages']).not.toBe(b['fetch:rumprun-packages']);
    expect(a['package:python3']).not.toBe(b['package:python3']);
  });

  it('rejects unknown targets with the list of known ones', () => {
    expect(() => planBuild(input(recipes, 'p1', ['pyhton3']))).toThrow(/unknown target "pyhton3"/);
  });

  it('with a lockfile, refuses sources it does not pin', () => {
    expect(() => planBuild({ ...input(recipes), lock: { version: 1, git: {}, tarballs: {}, patches: {} } })).toThrow(
      /not in recipes\/nabla.lock/,
    );
  });
});
