import {
  type GitSourceSpec,
  type Lockfile,
  type SourceOverride,
  type SourceSpec,
  type SubmoduleSpec,
  type TarballSourceSpec,
  UsageError,
} from '@nabla-build/model';

/**
 * Applies overrides and the lockfile to a recipe source: the result is exactly what will be fetched.
 * An override (`frankenlibc`, or `frankenlibc/solo5` for a submodule) wins over the lockfile; a source that
 * is neither overridden nor locked is an error unless the build is explicitly unlocked.
 */
export function resolveSource(
  spec: SourceSpec,
  lock: Lockfile | undefined,
  overrides: Record<string, SourceOverride>,
): SourceSpec {
  return spec.kind === 'git' ? resolveGit(spec, lock, overrides) : resolveTarball(spec, lock, overrides);
}

function resolveGit(
  spec: GitSourceSpec,
  lock: Lockfile | undefined,
  overrides: Record<string, SourceOverride>,
): GitSourceSpec {
  const o = overrides[spec.name];
  const locked = lock?.git[spec.name];
  if (!o?.rev && lock) {
    if (!locked) throw notLocked(spec.name);
    if (locked.rev !== spec.rev)
      throw new UsageError(
        'lock.stale',
        `source "${spec.name}": the recipe pins ${spec.rev} but nabla.lock has ${locked.rev}`,
        {
          where: 'recipes/nabla.lock',
          hint: `nabla-build lock --update ${spec.name}`,
        },
      );
  }
  const rev = o?.rev ?? spec.rev;
  const git = o?.git ?? spec.git;
  const submodules = spec.submodules.map((s) =>
    resolveSubmodule(spec.name, s, overrides, o?.rev ? undefined : locked?.submodules),
  );
  return { ...spec, git, rev, submodules };
}

function resolveSubmodule(
  parent: string,
  s: SubmoduleSpec,
  overrides: Record<string, SourceOverride>,
  locked: Record<string, { git: string; rev: string }> | undefined,
): SubmoduleSpec {
  const id = `${parent}/${s.path}`;
  const o = overrides[id];
  if (!o?.rev && locked) {
    const l = locked[s.path];
    if (!l) throw notLocked(id);
    if (l.rev !== s.rev)
      throw new UsageError('lock.stale', `submodule "${id}": the recipe pins ${s.rev} but nabla.lock has ${l.rev}`, {
        where: 'recipes/nabla.lock',
        hint: `nabla-build lock --update ${parent}`,
      });
  }
  return {
    ...s,
    git: o?.git ?? s.git,
    rev: o?.rev ?? s.rev,
    submodules: s.submodules.map((c) => resolveSubmodule(id, c, overrides, undefined)),
  };
}

function resolveTarball(
  spec: TarballSourceSpec,
  lock: Lockfile | undefined,
  overrides: Record<string, SourceOverride>,
): TarballSourceSpec {
  const o = overrides[spec.name];
  if (!o?.sha256 && lock) {
    const l = lock.tarballs[spec.name];
    if (!l) throw notLocked(spec.name);
    if (l.sha256 !== spec.sha256)
      throw new UsageError(
        'lock.stale',
        `tarball "${spec.name}": the recipe says sha256 ${spec.sha256} but nabla.lock has ${l.sha256}`,
        {
          where: 'recipes/nabla.lock',
          hint: `nabla-build lock --update ${spec.name}`,
        },
      );
  }
  return { ...spec, urls: o?.url ? [o.url] : spec.urls, sha256: o?.sha256 ?? spec.sha256 };
}

function notLocked(name: string): UsageError {
  return new UsageError('lock.missing', `source "${name}" is not in recipes/nabla.lock`, {
    where: 'recipes/nabla.lock',
    hint: `nabla-build lock (or build with --unlocked)`,
  });
}
