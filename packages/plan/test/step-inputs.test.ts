import { join } from 'node:path';
import { contentKey, type PlanStep } from '@nabla-build/model';
import { planBuild, STEP_SCHEMA } from '@nabla-build/plan';
import { loadRecipes } from '@nabla-build/recipes';
import { describe, expect, it } from 'vitest';

const repo = join(import.meta.dirname, '..', '..', '..');

/** The key as the planner defines it: the kind, the step's inputs and the keys of its deps, nothing else. */
function keyOf(step: PlanStep, inputs: unknown, all: Map<string, PlanStep>): string {
  const deps = Object.fromEntries(step.deps.map((d) => [d, all.get(d)?.key]));
  return contentKey({ schema: STEP_SCHEMA, kind: step.kind, inputs, deps });
}

/** Every leaf of a JSON value, as a path and a copy of the value with that leaf changed. */
function* mutations(value: unknown, path: string[] = []): Generator<[string, unknown]> {
  if (Array.isArray(value)) {
    if (value.length === 0) yield [[...path, '[]'].join('.'), ['added']];
    for (let i = 0; i < value.length; i++)
      for (const [p, v] of mutations(value[i], [...path, String(i)])) yield [p, value.map((x, j) => (j === i ? v : x))];
  } else if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    for (const k of Object.keys(o)) for (const [p, v] of mutations(o[k], [...path, k])) yield [p, { ...o, [k]: v }];
  } else if (typeof value === 'string') yield [path.join('.'), `${value}-changed`];
  else if (typeof value === 'number') yield [path.join('.'), value + 1];
  else if (typeof value === 'boolean') yield [path.join('.'), !value];
}

describe('a step is keyed by exactly what its executor reads', () => {
  const recipes = loadRecipes(join(repo, 'recipes'));
  const plan = planBuild({
    recipes,
    targets: ['world', 'nabla-run'],
    lock: undefined,
    overrides: {
      'rumprun-packages': { rev: 'b'.repeat(40) },
      'frankenlibc/solo5': { git: 'https://example.invalid/s' },
    },
    host: { arch: 'x86_64', cc: 'gcc 12', buildRoot: 'canonical' },
    projectPatchDigests: { solo5: 'p1', runnc: 'r1' },
    publish: { load: true, push: true, outputs: ['oci:/tmp/out'], naming: { registry: 'r.example', extraTags: [] } },
  });
  const all = new Map(plan.steps.map((s) => [s.id, s]));

  it('covers every step kind, and each key is the digest of its inputs and deps', () => {
    expect(new Set(plan.steps.map((s) => s.kind))).toEqual(
      new Set(['fetch', 'patch', 'toolchain', 'package', 'image', 'publish']),
    );
    for (const s of plan.steps) expect(keyOf(s, s.inputs, all), s.id).toBe(s.key);
  });

  it('the planner puts the resolved source (overrides applied), its provenance and the patch series into the inputs', () => {
    const fetch = all.get('fetch:rumprun-packages');
    expect(fetch?.kind === 'fetch' && fetch.inputs.fetch).toMatchObject({
      spec: { rev: 'b'.repeat(40) },
      overridden: ['rumprun-packages'],
      moved: ['rumprun-packages'],
    });
    // A URL-only override of a submodule: its URL is resolved, its pin still comes from the gitlink.
    const part = all.get('fetch:frankenlibc@solo5');
    expect(part?.kind === 'fetch' && part.inputs.fetch.spec.kind === 'git' && part.inputs.fetch).toMatchObject({
      spec: { submodules: [{ path: 'solo5', git: 'https://example.invalid/s' }] },
      overridden: [],
      moved: [],
    });
    const patch = plan.steps.find((s) => s.kind === 'patch' && s.inputs.patches.length > 0);
    expect(patch?.kind === 'patch' && patch.inputs.patches.every((p) => typeof p.digest === 'string')).toBe(true);
    const pkg = all.get('package:python3');
    expect(pkg?.kind === 'package' && pkg.inputs.tarballs.every((t) => t.fetch.spec.kind === 'tarball')).toBe(true);
  });

  it('toolchain and package inputs carry what their executors read of the recipes', () => {
    const chain = all.get('toolchain:frankenlibc');
    expect(chain?.kind === 'toolchain' && chain.inputs.provides.tender).toBeTruthy();
    expect(chain?.display?.file).toMatch(/frankenlibc\.yaml$/);
    const pkg = all.get('package:python3');
    expect(pkg?.kind === 'package' && [pkg.inputs.toolchain, pkg.inputs.bin !== undefined]).toEqual([
      'toolchain:frankenlibc',
      true,
    ]);
    const publish = all.get('publish:python3');
    expect(publish?.kind === 'publish' && publish.inputs.toolchain).toBe('toolchain:frankenlibc');
  });

  it('changing any field of any step’s inputs changes its key', () => {
    let fields = 0;
    for (const s of plan.steps) {
      for (const [path, changed] of mutations(s.inputs)) {
        fields++;
        expect(keyOf(s, changed, all), `${s.id}: inputs.${path}`).not.toBe(s.key);
      }
    }
    expect(fields).toBeGreaterThan(500);
  });
});
