import type { CompletedStep } from '@nabla-build/engine';
import type { MirrorRule, StepOf } from '@nabla-build/model';
import type { CredentialStore } from '@nabla-build/registry';

/**
 * What the executors need from the CLI, resolved once: where things are, what the user allowed, and how to
 * reach Docker and registries. Adapters get these as arguments; nothing here reads env or flags. There are no
 * recipes here: what a step builds is in its plan inputs (keyed), never looked up again.
 */
export interface StepEnvironment {
  cacheDir: string;
  patchesDir: string;
  mirrors: MirrorRule[];
  allowLocal: boolean;
  offline: boolean;
  /** Target names being built (for the `nabla-build fetch <target>` hint of offline errors). */
  targets: string[];
  /** The CLI's environment: native builds get its allow list (toolchain's buildEnv), a smoke boot its PATH. */
  env: Readonly<Record<string, string | undefined>>;
  publish: PublishEnvironment;
}

export interface PublishEnvironment {
  /** Registries reached over plain HTTP besides loopback ones. */
  insecureRegistries: string[];
  /** Boot the unikernel (nabla-build test) before pushing it. */
  smokeBeforePush: boolean;
  /** Registry credentials for a push to `registry` (NABLA_REGISTRY_* are scoped to it), from the CLI. */
  credentials(registry: string | undefined): CredentialStore;
  /** Called once per published image (push, load, oci dir, tarball), for stdout and --json. */
  onPublished(published: PublishedImage): void;
}

/** The JSON result each step kind records in its cache entry (what later steps read). */
export interface FetchResult {
  kind: 'git' | 'tarball';
  locked?: { git: string; rev: string; submodules: Record<string, { git: string; rev: string }> };
  path?: string;
  sha256?: string;
  bytesFetched: number;
}

export interface TreeResult {
  /** Relative to the step directory. */
  tree: string;
  /** Newest commit time (seconds) of the tree and its submodules: the default image creation time. */
  sourceEpoch: number;
  patches: { name: string; status: string }[];
}

export interface ToolchainResult {
  tree: string;
  sourceEpoch: number;
  /** The recipe's `provides` (tender, elftool, bin), relative to the step directory. */
  provides?: { tender?: string; elftool?: string; bin?: string };
  /** Built in the canonical build root: packages must be built there too. */
  canonical?: boolean;
}

export interface PackageResult {
  out: string;
  sourceEpoch: number;
  artifacts: { name: string; bytes: number }[];
}

export interface ImageResult {
  layout: string;
  manifestDigest: string;
  configDigest: string;
  bytes: number;
}

/** The result each step kind records; later steps read it typed, through `completedOf` / `depOf`. */
export interface StepResults {
  fetch: FetchResult;
  patch: TreeResult;
  toolchain: ToolchainResult;
  package: PackageResult;
  image: ImageResult;
}

/** A finished step of kind `K` with the result its kind records. */
export type CompletedOf<K extends keyof StepResults> = CompletedStep & { step: StepOf<K>; result: StepResults[K] };

/** One thing a publish step produced, printed on stdout: a digest reference, a loaded tag, a file. */
export interface PublishedImage {
  target: string;
  kind: 'push' | 'load' | 'oci' | 'tar';
  /** `name@sha256:…` for pushes, `name:tag` for loads, `oci:<dir>` / `tar:<file>` otherwise. */
  reference: string;
  tags: string[];
  manifestDigest: string;
  bytesUploaded?: number;
}
