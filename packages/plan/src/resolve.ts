import {
  type GitSourceSpec,
  type Lockfile,
  type PlannedSource,
  type SourceOverride,
  type SourceSpec,
  type SubmoduleSpec,
  type TarballSourceSpec,
  UsageError,
} from '@nabla-build/model';

/**
 * Applies overrides and the lockfile to a recipe source: the result is exactly what will be fetched, and which
 * of its pins an override chose. An override (`frankenlibc`, or `frankenlibc/solo5` for a submodule) wins over
 * the lockfile; a source that is neither overridden nor locked is an error unless the build is explicitly
 * unlocked. The only place overrides are applied.
 */
export function resolveSource<S extends SourceSpec>(
  spec: S,
  lock: Lockfile | undefined,
  overrides: Record<string, SourceOverride>,
): PlannedSource<S> {
  const pins: PlannedSource<S> = { spec, overridden: [], moved: [] };
  /** The override of `label` if it sets the pin (`rev` or `sha256`), recorded in the provenance. */
  const pin = (label: string, recipePin: string, key: 'rev' | 'sha256') => {
    const o = overrides[label];
    const chosen = o?.[key];
    if (chosen !== undefined) pins.overridden.push(label);
    if (key === 'rev' && chosen !== undefined && chosen !== recipePin) pins.moved.push(label);
    return o;
  };
  pins.spec = (spec.kind === 'git' ? resolveGit(spec, lock, pin) : resolveTarball(spec, lock, pin)) as S;
  return pins;
}

type Pin = (label: string, recipePin: string, key: 'rev' | 'sha256') => SourceOverride | undefined;

function resolveGit(spec: GitSourceSpec, lock: Lockfile | undefined, pin: Pin): GitSourceSpec {
  const o = pin(spec.name, spec.rev, 'rev');
  const locked = lock?.git[spec.name];
  if (!o?.rev && lock) {
    if (!locked) throw notLocked(spec.name);
    if (locked.rev !== spec.rev) throw stale(`source "${spec.name}"`, `pins ${spec.rev}`, locked.rev, spec.name);
  }
  const rev = o?.rev ?? spec.rev;
  const git = o?.git ?? spec.git;
  const submodules = spec.submodules.map((s) =>
    resolveSubmodule(spec.name, s, pin, o?.rev ? undefined : locked?.submodules),
  );
  return { ...spec, git, rev, submodules };
}

function resolveSubmodule(
  parent: string,
  s: SubmoduleSpec,
  pin: Pin,
  locked: Record<string, { git: string; rev: string }> | undefined,
): SubmoduleSpec {
  const id = `${parent}/${s.path}`;
  const o = pin(id, s.rev, 'rev');
  if (!o?.rev && locked) {
    const l = locked[s.path];
    if (!l) throw notLocked(id);
    if (l.rev !== s.rev) throw stale(`submodule "${id}"`, `pins ${s.rev}`, l.rev, parent);
  }
  return {
    ...s,
    git: o?.git ?? s.git,
    rev: o?.rev ?? s.rev,
    submodules: s.submodules.map((c) => resolveSubmodule(id, c, pin, undefined)),
  };
}

function resolveTarball(spec: TarballSourceSpec, lock: Lockfile | undefined, pin: Pin): TarballSourceSpec {
  const o = pin(spec.name, spec.sha256, 'sha256');
  if (!o?.sha256 && lock) {
    const l = lock.tarballs[spec.name];
    if (!l) throw notLocked(spec.name);
    if (l.sha256 !== spec.sha256)
      throw stale(`tarball "${spec.name}"`, `says sha256 ${spec.sha256}`, l.sha256, spec.name);
  }
  return { ...spec, urls: o?.url ? [o.url] : spec.urls, sha256: o?.sha256 ?? spec.sha256 };
}

function stale(subject: string, recipeSays: string, locked: string, update: string): UsageError {
  return new UsageError('lock.stale', `${subject}: the recipe ${recipeSays} but nabla.lock has ${locked}`, {
    where: 'recipes/nabla.lock',
    hint: `nabla-build lock --update ${update}`,
  });
}

function notLocked(name: string): UsageError {
  return new UsageError('lock.missing', `source "${name}" is not in recipes/nabla.lock`, {
    where: 'recipes/nabla.lock',
    hint: `nabla-build lock (or build with --unlocked)`,
  });
}
