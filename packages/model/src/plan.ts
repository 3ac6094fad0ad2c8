/**
 * The build plan: a DAG of steps, each keyed by the content of its inputs. Produced by @nabla-build/plan
 * (pure), walked by @nabla-build/engine, executed by the adapters wired in @nabla-build/steps.
 */

export type StepKind = 'fetch' | 'patch' | 'toolchain' | 'package' | 'image' | 'publish';

export interface PlanStep {
  /** Unique id, `<kind>:<subject>`, e.g. `fetch:frankenlibc`, `package:python3`. */
  id: string;
  kind: StepKind;
  /** The recipe or source the step is about. */
  subject: string;
  /** Ids of the steps whose outputs this step reads. */
  deps: string[];
  /** sha256 (hex) of the canonical JSON of `inputs` plus the keys of `deps`. */
  key: string;
  /** Everything that determines the step's output, as plain JSON (shown by `plan --json`). */
  inputs: Record<string, unknown>;
  /** Publish steps have side effects outside the cache and always run. */
  cacheable: boolean;
}

export interface BuildPlan {
  targets: string[];
  /** Topologically sorted: every step comes after its deps. */
  steps: PlanStep[];
}

/** A git source resolved to exact commits, as the lockfile records it. */
export interface LockedGit {
  git: string;
  rev: string;
  submodules: Record<string, { git: string; rev: string }>;
}

export interface LockedTarball {
  url: string;
  sha256: string;
}

/** recipes/nabla.lock (YAML): every source and patch of every shipped recipe, exactly. */
export interface Lockfile {
  version: 1;
  git: Record<string, LockedGit>;
  tarballs: Record<string, LockedTarball>;
  /** Patch file (relative to the repository, or `<source>:<path>` for upstream series) → sha256. */
  patches: Record<string, string>;
}

/** Replaces a URL prefix with another URL or a local path (`file://` or absolute). */
export interface MirrorRule {
  prefix: string;
  replacement: string;
  /** Where the rule came from, for error messages: a config file, `NABLA_BUILD_MIRRORS`, `--mirror`. */
  origin: string;
}

/** Points one source (or `source/submodule-path`) at another URL and/or commit. */
export interface SourceOverride {
  git?: string;
  rev?: string;
  url?: string;
  sha256?: string;
}

/** Facts about the build host that change native outputs; part of toolchain and package keys. */
export interface HostFacts {
  arch: string;
  /** First line of `cc --version`. */
  cc: string;
  /**
   * `canonical`: native builds run with their trees mounted at fixed paths (/mnt/nabla-build/...), so
   * binaries do not depend on the cache directory; `host`: they run where they are (not reproducible across
   * cache directories). A toolchain built one way only works for packages built the same way.
   */
  buildRoot: 'canonical' | 'host';
}
