/**
 * The build plan: a DAG of steps, each keyed by the content of its inputs. Produced by @nabla-build/plan
 * (pure), walked by @nabla-build/engine, executed by the adapters wired in @nabla-build/steps.
 */

import type {
  ArtifactSpec,
  CheckoutSubset,
  CommandSpec,
  GitSourceSpec,
  ImageSpec,
  ManifestSpec,
  PatchSeriesSpec,
  SmokeSpec,
  SourceSpec,
  TarballSourceSpec,
  ToolchainProvides,
  ToolchainUse,
} from './recipe.js';

export type StepKind = 'fetch' | 'patch' | 'toolchain' | 'package' | 'image' | 'publish';

/**
 * Which pins of a resolved source the user's config chose (labels `name` and `name/sub/path`), as far as fetching
 * it depends on that: `overridden` pins are named "override of X" in errors and a submodule among them is not
 * checked against its parent's gitlink; under a `moved` label (its rev is not the recipe's) the submodules
 * follow the gitlinks.
 */
export interface PinProvenance {
  overridden: string[];
  moved: string[];
}

/** A source as a step fetches it: resolved by the planner (overrides and the lockfile check applied). */
export interface PlannedSource<S extends SourceSpec = SourceSpec> extends PinProvenance {
  /** URLs, revs and sha256 exactly as fetched. */
  spec: S;
}

export interface FetchInputs {
  /** What identifies the content (commits, checksums), after overrides. */
  source: Record<string, unknown>;
  /** What the executor fetches: the part of the source a toolchain checks out, when `checkout` says so. */
  fetch: PlannedSource;
  checkout?: CheckoutSubset;
}

/** A patch series with the digest of its files (project series) or its origin commit (upstream series). */
export interface PlannedSeries extends PatchSeriesSpec {
  digest: string;
}

export interface PatchInputs {
  tree: string;
  /** The tree to check out (the subset `checkout` names). */
  fetch: PlannedSource<GitSourceSpec>;
  checkout?: CheckoutSubset;
  patches: PlannedSeries[];
}

/** A verified tarball a package build places into its tree. */
export interface PlannedTarball {
  name: string;
  file: string;
  placeIn: string;
  fetch: PlannedSource<TarballSourceSpec>;
}

export interface PackageInputs {
  recipe: string;
  version: string;
  /** The toolchain step (`toolchain:<name>`) whose built tree this package builds with. */
  toolchain: string;
  /** The git source the commands run in, or `toolchain`. */
  tree: string;
  configMk: Record<string, string>;
  commands: CommandSpec[];
  manifest?: ManifestSpec;
  artifacts: ArtifactSpec[];
  tarballs: PlannedTarball[];
  /** The toolchain's wrappers directory (its `provides.bin`), put first on PATH. */
  bin?: string;
  host: HostFacts;
}

export interface ToolchainInputs {
  recipe: string;
  version: string;
  commands: CommandSpec[];
  outputs: string[];
  uses?: ToolchainUse[];
  provides: ToolchainProvides;
  host: HostFacts;
}

/** A source an image is made from, as its labels and SBOM name it. */
export interface ImageComponent {
  name: string;
  url?: string;
  rev?: string;
  sha256?: string;
  submodules?: { path: string; url: string; rev: string }[];
  [field: string]: unknown;
}

export interface ImageInputs {
  recipe: string;
  version: string;
  license?: string;
  homepage?: string;
  description: string;
  image: ImageSpec;
  toolchain: { name: string; facts: Record<string, string>; key: string };
  origin: { name: string; git: string; rev: string };
  components: ImageComponent[];
  created: number | 'newest-source-commit';
  patchesDigest: string;
  /** The layer format's fingerprint (plan input `imageFormat`): compression and level. */
  format?: string;
}

/** Where a built image goes. */
export interface PublishInputs {
  load: boolean;
  push: boolean;
  /** `oci:<dir>` and `tar:<file>`. */
  outputs: string[];
  naming: { registry?: string; namespace?: string; extraTags: string[]; immutableOnly?: boolean };
  repository: string;
  version: string;
  /** The toolchain step whose tender boots the image before a push, and how. */
  toolchain: string;
  smoke?: SmokeSpec;
}

/** The inputs of each step kind. */
export interface StepInputs {
  fetch: FetchInputs;
  patch: PatchInputs;
  toolchain: ToolchainInputs;
  package: PackageInputs;
  image: ImageInputs;
  publish: PublishInputs;
}

interface StepFields<K extends StepKind> {
  /** Unique id, `<kind>:<subject>`, e.g. `fetch:frankenlibc`, `package:python3`. */
  id: string;
  kind: K;
  /** The recipe or source the step is about. */
  subject: string;
  /** Ids of the steps whose outputs this step reads. */
  deps: string[];
  /** sha256 (hex) of the canonical JSON of `inputs` plus the keys of `deps`. */
  key: string;
  /** Everything that determines the step's output, as plain JSON (shown by `plan --json`). */
  inputs: StepInputs[K];
  /** Publish steps have side effects outside the cache and always run. */
  cacheable: boolean;
  /**
   * For messages and progress only (the recipe file errors point at, log phases, failure hints): not part of
   * the key, and never read to decide what a step produces.
   */
  display?: StepDisplay;
}

export interface StepDisplay {
  file: string;
  phases?: { match: string; phase: string }[];
  hints?: { match: string; hint: string }[];
}

/** One step of a plan, by kind: `step.kind === 'fetch'` narrows `step.inputs` to FetchInputs. */
export type PlanStep = { [K in StepKind]: StepFields<K> }[StepKind];

/** The step of one kind. */
export type StepOf<K extends StepKind> = Extract<PlanStep, { kind: K }>;

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

/** One file of a cache entry, as recorded when the entry was completed. */
export interface ManifestFile {
  path: string;
  size: number;
  /** sha256 of the content, or of the link target for symlinks. */
  sha256: string;
  type: 'file' | 'symlink';
}

/**
 * A step cache entry's `entry.json`, written last, atomically: its presence is what makes a step directory a cache
 * entry. The remote cache carries it inside each entry's config blob.
 */
export interface EntryManifest {
  key: string;
  step: string;
  completedAt: string;
  /** Paths (relative to the entry dir) covered by the integrity check. */
  roots: string[];
  files: ManifestFile[];
  /** Whatever the executor returned (resolved commits, image digest...), as JSON. */
  result: unknown;
}
