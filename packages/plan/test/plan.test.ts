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
      'fetch:frankenlibc@solo5',
      'patch:frankenlibc@solo5',
      'toolchain:solo5',
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
    // The project's Solo5 series is the solo5 step's; frankenlibc's own patch step does not read it.
    expect(changed).toEqual([
      'image:python3',
      'package:python3',
      'patch:frankenlibc@solo5',
      'publish:python3',
      'toolchain:frankenlibc',
      'toolchain:solo5',
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

  it('world plans every base image with one shared toolchain (and the Solo5 it uses)', () => {
    const plan = planBuild(input(recipes, 'p1', ['world']));
    expect(
      plan.steps
        .filter((s) => s.kind === 'toolchain')
        .map((s) => s.id)
        .sort(),
    ).toEqual(['toolchain:frankenlibc', 'toolchain:solo5']);
    const withImage = [...recipes.targets.values()].filter((t) => t.image).map((t) => t.name);
    expect(plan.targets).toEqual(withImage.sort());
    expect(plan.targets).not.toContain('nabla-run');
    expect(plan.targets).not.toContain('runnc');
  });

  it('runtime targets have no image: the package step is final', () => {
    const plan = planBuild(input(recipes, 'p1', ['nabla-run', 'runnc']));
    expect(plan.steps.some((s) => s.kind === 'image')).toBe(false);
    expect(plan.steps.find((s) => s.id === 'package:nabla-run')?.deps).toEqual(['toolchain:solo5']);
    // runnc's own tree takes the project's runnc series in a patch step of its own.
    const runnc = plan.steps.find((s) => s.id === 'package:runnc');
    expect(runnc?.deps).toEqual(['toolchain:solo5', 'patch:runnc@runnc']);
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

  it("Solo5 is a step of its own: solo5-hello and nabla-run need neither LKL nor frankenlibc's build", () => {
    for (const t of ['solo5-hello', 'nabla-run', 'solo5-hello-runnc']) {
      const plan = planBuild(input(recipes, 'p1', [t]));
      const ids = plan.steps.map((s) => s.id);
      expect(ids).toContain('toolchain:solo5');
      expect(ids).not.toContain('toolchain:frankenlibc');
      expect(ids).not.toContain('fetch:frankenlibc');
      // Only the solo5 submodule of frankenlibc is fetched, and only patches/solo5 and solo5 are checked out.
      const fetch = plan.steps.find((s) => s.id === 'fetch:frankenlibc@solo5') as PlanStep;
      const src = fetch.inputs.source as { submodules: { path: string }[] };
      expect(src.submodules.map((m) => m.path)).toEqual(['solo5']);
      const patch = plan.steps.find((s) => s.id === 'patch:frankenlibc@solo5') as PlanStep;
      expect(patch.inputs.checkout).toEqual({ paths: ['patches/solo5', 'solo5'], submodules: ['solo5'] });
      expect(patch.inputs.patches).toEqual([
        expect.objectContaining({ from: 'upstream', only: ['0001-solo5-elf-segment-align-workaround.patch'] }),
        expect.objectContaining({ from: 'project', dir: 'solo5', applyIn: 'solo5' }),
      ]);
    }
    // frankenlibc's build depends on the built Solo5 and places it at solo5/.
    const py = planBuild(input(recipes));
    const chain = py.steps.find((s) => s.id === 'toolchain:frankenlibc') as PlanStep;
    expect(chain.deps).toEqual(['patch:frankenlibc', 'toolchain:solo5']);
    expect(chain.inputs.uses).toEqual([{ toolchain: 'solo5', path: 'solo5' }]);
  });

  it("the Solo5 step's key does not change when LKL (or musl, llvm) changes; frankenlibc's does", () => {
    const base = keys(planBuild(input(recipes, 'p1', ['python3', 'solo5-hello'])).steps);
    for (const sub of ['linux', 'musl', 'llvm']) {
      const over = keys(
        planBuild({
          ...input(recipes, 'p1', ['python3', 'solo5-hello']),
          overrides: { [`frankenlibc/${sub}`]: { rev: 'b'.repeat(40) } },
        }).steps,
      );
      for (const id of [
        'fetch:frankenlibc@solo5',
        'patch:frankenlibc@solo5',
        'toolchain:solo5',
        'package:solo5-hello',
        'image:solo5-hello',
      ])
        expect(over[id], `${id} after overriding frankenlibc/${sub}`).toBe(base[id]);
      for (const id of ['fetch:frankenlibc', 'patch:frankenlibc', 'toolchain:frankenlibc', 'package:python3'])
        expect(over[id], `${id} after overriding frankenlibc/${sub}`).not.toBe(base[id]);
    }
    // …while Solo5's own pin changes both.
    const solo5 = keys(
      planBuild({
        ...input(recipes, 'p1', ['python3', 'solo5-hello']),
        overrides: { 'frankenlibc/solo5': { rev: 'c'.repeat(40) } },
      }).steps,
    );
    expect(solo5['toolchain:solo5']).not.toBe(base['toolchain:solo5']);
    expect(solo5['toolchain:frankenlibc']).not.toBe(base['toolchain:frankenlibc']);
  });

  it('a target manifest is part of its package key', () => {
    const t = recipes.targets.get('solo5-hello-runnc') as TargetRecipe;
    expect(t.manifest).toEqual({ file: 'solo5/tests/test_hello/manifest.json', block: ['rootfs'], net: ['tap'] });
    const edited: RecipeSet = { ...recipes, targets: new Map(recipes.targets) };
    edited.targets.set(t.name, {
      ...t,
      manifest: { ...(t.manifest as NonNullable<TargetRecipe['manifest']>), net: [] },
    });
    const a = keys(planBuild(input(recipes, 'p1', [t.name])).steps);
    const b = keys(planBuild(input(edited, 'p1', [t.name])).steps);
    expect(a['toolchain:solo5']).toBe(b['toolchain:solo5']);
    expect(a[`package:${t.name}`]).not.toBe(b[`package:${t.name}`]);
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
