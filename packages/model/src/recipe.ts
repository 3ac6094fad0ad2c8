/**
 * The recipe model: what `recipes/*.yaml` say once loaded and validated. Pure data, no behaviour.
 * The YAML schema lives in @nabla-build/recipes; these types are what every other package consumes.
 */

/** A git submodule of a git source, placed at `path` inside its parent tree. */
export interface SubmoduleSpec {
  path: string;
  /** Canonical URL (what `.gitmodules` should say once dead `git://` URLs are rewritten). */
  git: string;
  /** Full commit SHA the superproject pins. */
  rev: string;
  /**
   * `full`: a real clone with its own `.git` directory (Solo5's gen_version_h.sh tests `-d .git`);
   * `submodule` (default): an ordinary submodule checkout.
   */
  clone: 'submodule' | 'full';
  /** Only these paths are checked out (partial clone + sparse checkout), e.g. llvm-project's libc++ trees. */
  sparse?: string[];
  /** Submodules of this submodule, recursively. */
  submodules: SubmoduleSpec[];
}

export interface GitSourceSpec {
  kind: 'git';
  name: string;
  git: string;
  /** Branch or tag the pin was taken from; informational and used by `lock --update`. */
  branch?: string;
  /** Full commit SHA; the lockfile must agree with it. */
  rev: string;
  submodules: SubmoduleSpec[];
  sparse?: string[];
}

export interface TarballSourceSpec {
  kind: 'tarball';
  name: string;
  /** Candidate URLs, tried in order (first is canonical, the rest are fallbacks for dead hosts). */
  urls: string[];
  sha256: string;
  /** File name as the package Makefile expects it. */
  file: string;
  /** Where the package Makefile looks for it, relative to the build tree (e.g. `python3/build/`). */
  placeIn?: string;
}

export type SourceSpec = GitSourceSpec | TarballSourceSpec;

/** A patch series: every `*.patch` in `dir` (sorted), applied with `patch -p<strip>` inside `applyIn`. */
export interface PatchSeriesSpec {
  /** `upstream`: the series ships inside a source tree (frankenlibc's patches/solo5); `project`: our patches/. */
  from: 'upstream' | 'project';
  /** For `upstream`, the directory inside the source; for `project`, relative to the repository's patches/. */
  dir: string;
  /** Directory, relative to the source's root, in which `patch` runs. */
  applyIn: string;
  strip: number;
  /** Largest fuzz factor accepted (0 = exact context). */
  maxFuzz: number;
  /** Largest line offset accepted per hunk. */
  maxOffset: number;
  /** Only these files of the series (names in `dir`), e.g. the one patch of an upstream series a step needs. */
  only?: string[];
}

/** A native build command: argv (never a shell string), with `${jobs}` substituted. */
export interface CommandSpec {
  argv: string[];
  /** Relative to the step's build tree. */
  cwd: string;
  env: Record<string, string>;
  /** Environment variables removed before running (e.g. redis breaks on an inherited ARCH). */
  unset: string[];
}

export interface ArtifactSpec {
  /** Path inside the build tree. */
  from: string;
  /** Name in the step's output directory. */
  to: string;
}

/**
 * Part of a git source that a toolchain checks out: its own key and checkout then depend on nothing else of the
 * source (Solo5 is built from frankenlibc's `solo5` submodule and one patch file, not from LKL or llvm).
 */
export interface CheckoutSubset {
  /** Cone-mode sparse checkout of the superproject (top-level files are always included). */
  paths?: string[];
  /** Only these submodules (top-level paths); the others are neither fetched nor checked out. */
  submodules?: string[];
}

/** Another toolchain's built tree (or a path of it) placed into this toolchain's tree before its commands. */
export interface ToolchainUse {
  toolchain: string;
  /** Path inside both trees (e.g. `solo5`): replaces what the checkout had there. */
  path: string;
}

export interface ToolchainRecipe {
  kind: 'toolchain';
  name: string;
  file: string;
  description: string;
  version: string;
  /** The git source that is the toolchain tree (e.g. frankenlibc). */
  tree: string;
  /** Only part of the tree source is checked out (and keyed). */
  checkout?: CheckoutSubset;
  /** Built trees of other toolchains reused here (they are steps of their own, with their own keys). */
  uses: ToolchainUse[];
  sources: SourceSpec[];
  patches: PatchSeriesSpec[];
  /** Run in order inside the tree (e.g. `bash build.sh -k linux -j ${jobs} notests solo5`). */
  commands: CommandSpec[];
  /** Lines of the build log that announce phases, for progress display: regex → phase name. */
  phases: { match: string; phase: string }[];
  /** Known failure signatures: regex on the log tail → hint. */
  hints: { match: string; hint: string }[];
  /** Paths that make up the toolchain, relative to the tree (rump, rumpobj/tests, the tenders...). */
  outputs: string[];
  /** Facts recorded in image labels (solo5 version, spt ABI...). */
  facts: Record<string, string>;
  /**
   * Well-known parts of the built tree, by role, relative to the tree: `tender` (the spt tender that boots its
   * unikernels), `elftool` (solo5-elftool, for manifests), `bin` (wrappers put first on PATH of package builds).
   */
  provides: ToolchainProvides;
}

export interface ToolchainProvides {
  tender?: string;
  elftool?: string;
  bin?: string;
}

/**
 * The Solo5 devices a target's unikernel declares, by name (#16). The package step writes them as a Solo5
 * manifest source to `file` in the build tree before the build commands (which compile and link it with the
 * pinned Solo5's own tooling).
 */
export interface ManifestSpec {
  /** Where the generated `manifest.json` goes, relative to the build tree. */
  file: string;
  block: string[];
  net: string[];
}

export interface ImageCopySpec {
  /** An artifact name (ArtifactSpec.to), or a path under it. */
  from: string;
  /** Absolute path inside the image. */
  to: string;
}

export interface ImageSpec {
  /** Repository name without registry and namespace, e.g. `lkl-nabla-python3-base`. */
  repository: string;
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  copy: ImageCopySpec[];
  labels: Record<string, string>;
  /** Annotations of the image manifest (`--annotation k=v` on build); none by default. */
  annotations?: Record<string, string>;
  workdir?: string;
  exposedPorts: string[];
}

/** How `nabla-build test` checks a booted unikernel. */
export interface SmokeSpec {
  args: string[];
  /** Substring expected on the console. */
  expect?: string;
  /** A TCP service check: `redis-ping` or `http-get` on `port`. */
  probe?: { kind: 'redis-ping' | 'http-get'; port: number };
  timeoutSeconds: number;
}

export interface TargetBuildSpec {
  /**
   * The git source the commands run in, or `toolchain`: artifacts come from the toolchain's built tree (when
   * the target has commands or a manifest, they run in a copy of it).
   */
  tree: string;
  /** Make invocations, in order. Empty when the artifacts come straight from the toolchain output. */
  commands: CommandSpec[];
  /** Lines written to `<tree>/config.mk` (rumprun-packages' contract), KEY=VALUE. */
  configMk: Record<string, string>;
}

export interface TargetRecipe {
  kind: 'target';
  name: string;
  file: string;
  description: string;
  /** Application version; image tags derive from it with semver. */
  version: string;
  license?: string;
  homepage?: string;
  /** Name of the toolchain recipe whose output builds this target. */
  toolchain: string;
  sources: SourceSpec[];
  patches: PatchSeriesSpec[];
  build: TargetBuildSpec;
  /** Devices declared in the unikernel's Solo5 manifest, generated at build time. */
  manifest?: ManifestSpec;
  artifacts: ArtifactSpec[];
  /** Targets without an image (the nabla-run tender) produce artifacts only. */
  image?: ImageSpec;
  smoke?: SmokeSpec;
  /** Host tools this target needs beyond the toolchain's (doctor reports them). */
  requires: string[];
}

export type Recipe = ToolchainRecipe | TargetRecipe;

/** What building a toolchain reads of its recipe (`file`, `phases` and `hints` for messages only). */
export type ToolchainBuildSpec = Pick<ToolchainRecipe, 'name' | 'file' | 'commands' | 'phases' | 'hints' | 'outputs'>;

/** What building a target's package reads of its recipe (`file` for messages only). */
export type PackageBuildSpec = Pick<TargetRecipe, 'name' | 'file' | 'artifacts' | 'manifest'> & {
  build: Pick<TargetBuildSpec, 'commands' | 'configMk'>;
};

export interface RecipeSet {
  toolchains: Map<string, ToolchainRecipe>;
  targets: Map<string, TargetRecipe>;
  /** Absolute path of the repository's patches/ directory (project patch series). */
  patchesDir: string;
}
