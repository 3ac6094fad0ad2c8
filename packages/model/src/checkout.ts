import type { CheckoutSubset, GitSourceSpec } from './recipe.js';

/**
 * The part of a git source a toolchain checks out (`checkout.submodules` of its recipe): the same source with
 * only the listed submodules. What is left out is neither fetched nor part of any key. Pure.
 */
export function subsetSource(spec: GitSourceSpec, subset: CheckoutSubset | undefined): GitSourceSpec {
  const keep = subset?.submodules;
  if (!keep) return spec;
  return { ...spec, submodules: spec.submodules.filter((s) => keep.includes(s.path)) };
}
