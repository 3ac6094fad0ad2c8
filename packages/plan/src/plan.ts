import {
  type BuildPlan,
  type CheckoutSubset,
  contentKey,
  type GitSourceSpec,
  type HostFacts,
  type ImageSpec,
  type Lockfile,
  type PatchSeriesSpec,
  type PlannedSource,
  type PlanStep,
  type RecipeSet,
  type SourceOverride,
  type SourceSpec,
  type StepDisplay,
  type StepInputs,
  type StepKind,
  subsetSource,
  type TargetRecipe,
  type ToolchainRecipe,
  UsageError,
} from '@nabla-build/model';
import { resolveSource } from './resolve.js';
import type { NamingOptions } from './tags.js';

/** Bumped when what a step produces changes for the same inputs: every key changes with it. */
export const STEP_SCHEMA = 'nabla-build/steps/1';

/** What happens after the image is assembled: publishing is a step of its own, never cached. */
export interface PublishOptions {
  load: boolean;
  push: boolean;
  /** `oci:<dir>` and `tar:<file>` outputs. */
  outputs: string[];
  /** Where images go and which extra tags they get; the tags themselves derive from version and image key. */
  naming: NamingOptions;
}

export interface PlanInput {
  recipes: RecipeSet;
  targets: string[];
  /** `undefined` means `--unlocked`: recipe pins are used as they are. */
  lock: Lockfile | undefined;
  overrides: Record<string, SourceOverride>;
  host: HostFacts;
  /** Digest of each project patch series, by its `dir` under patches/ (computed by the caller from files). */
  projectPatchDigests: Record<string, string>;
  /** SOURCE_DATE_EPOCH when set; otherwise images take the newest source commit time (resolved at build). */
  sourceDateEpoch?: number;
  publish?: PublishOptions;
  /** How layers are written (compressor and its version): digests depend on it, so it is part of image keys. */
  imageFormat?: string;
}

/**
 * Turns targets into a DAG of steps: fetch → patch → toolchain → package → image → publish. Pure: the same
 * input always gives the same plan and the same keys. A key covers the step's own inputs and the keys of the
 * steps it reads, so a change anywhere upstream changes every key downstream of it, and nothing else.
 */
export function planBuild(input: PlanInput): BuildPlan {
  const planner = new Planner(input);
  const targets = expandTargets(input.recipes, input.targets);
  for (const name of targets) planner.target(input.recipes.targets.get(name) as TargetRecipe);
  return { targets, steps: planner.steps() };
}

/** The steps planned so far, and one method per step kind that adds a step after the steps it reads. */
class Planner {
  private readonly planned = new Map<string, PlanStep>();
  private readonly resolved = new Map<string, PlannedSource>();

  constructor(private readonly input: PlanInput) {}

  steps(): PlanStep[] {
    return [...this.planned.values()];
  }

  /** Adds a step once; its key is computed from its inputs and the keys of its deps, nothing else. */
  private add<K extends StepKind>(
    kind: K,
    subject: string,
    deps: string[],
    inputs: StepInputs[K],
    display?: StepDisplay,
    cacheable = true,
  ): string {
    const id = `${kind}:${subject}`;
    if (this.planned.has(id)) return id;
    const depKeys = Object.fromEntries(deps.map((d) => [d, this.step(d).key]));
    const key = contentKey({ schema: STEP_SCHEMA, kind, inputs, deps: depKeys });
    this.planned.set(id, {
      id,
      kind,
      subject,
      deps,
      key,
      inputs,
      cacheable,
      ...(display ? { display } : {}),
    } as PlanStep);
    return id;
  }

  private step(id: string): PlanStep {
    return this.planned.get(id) as PlanStep;
  }

  /** A recipe source after the lockfile check and the overrides: the only place overrides are applied. */
  private resolve<S extends SourceSpec>(spec: S): PlannedSource<S> {
    let r = this.resolved.get(spec.name);
    if (!r) {
      r = resolveSource(spec, this.input.lock, this.input.overrides);
      this.resolved.set(spec.name, r);
    }
    return r as PlannedSource<S>;
  }

  private source(spec: SourceSpec): SourceSpec {
    return this.resolve(spec).spec;
  }

  /** What a fetch of `spec` needs: the resolved part that is fetched and which of its pins an override chose. */
  private fetchOf<S extends SourceSpec>(spec: S, checkout?: CheckoutSubset): PlannedSource<S> {
    const r = this.resolve(spec);
    if (r.spec.kind !== 'git' || !checkout?.submodules) return r;
    const part = subsetSource(r.spec, checkout);
    const subs = part.submodules.map((s) => `${part.name}/${s.path}`);
    const inPart = (l: string) => l === part.name || subs.some((k) => l === k || l.startsWith(`${k}/`));
    return { spec: part as S, overridden: r.overridden.filter(inPart), moved: r.moved.filter(inPart) };
  }

  /** A whole source (`fetch:<name>`), or the part of it that `owner` checks out (`fetch:<name>@<owner>`). */
  private fetch(spec: SourceSpec, subset?: { owner: string; checkout: CheckoutSubset }): string {
    if (spec.kind === 'tarball' || !subset?.checkout.submodules)
      return this.add('fetch', spec.name, [], { source: sourceIdentity(this.source(spec)), fetch: this.fetchOf(spec) });
    const part = subsetSource(this.source(spec) as GitSourceSpec, subset.checkout);
    return this.add('fetch', `${spec.name}@${subset.owner}`, [], {
      source: sourceIdentity(part),
      fetch: this.fetchOf(spec, subset.checkout),
      checkout: subset.checkout,
    });
  }

  /** A checked-out tree with its patch series applied (`patch:<tree>`, or `patch:<tree>@<owner>`). */
  private patch(tree: GitSourceSpec, series: PatchSeriesSpec[], owner: string | undefined, checkout?: CheckoutSubset) {
    const git = this.source(tree) as GitSourceSpec;
    const subject = owner ? `${git.name}@${owner}` : git.name;
    return this.add('patch', subject, [this.fetch(tree, owner && checkout ? { owner, checkout } : undefined)], {
      tree: git.name,
      fetch: this.fetchOf(tree, checkout),
      ...(checkout ? { checkout } : {}),
      patches: series.map((s) => ({ ...s, digest: seriesDigest(s, git, this.input.projectPatchDigests) })),
    });
  }

  /** The sources of a toolchain as far as its own checkout goes (for keys, labels and the SBOM). */
  private chainSource(chain: ToolchainRecipe): GitSourceSpec {
    const tree = chain.sources.find((s) => s.name === chain.tree) as GitSourceSpec;
    return subsetSource(this.source(tree) as GitSourceSpec, chain.checkout);
  }

  /**
   * A toolchain step, after the toolchains it uses (each a step of its own: Solo5 is built once, keyed by Solo5
   * alone, and frankenlibc's build reuses the built tree).
   */
  private toolchain(name: string, needer: string): string {
    const chain = this.input.recipes.toolchains.get(name);
    if (!chain)
      throw new UsageError('plan.toolchain', `"${needer}" needs toolchain "${name}", which no recipe defines`);
    const id = `toolchain:${chain.name}`;
    if (this.planned.has(id)) return id;
    const chainTree = chain.sources.find((s) => s.name === chain.tree) as GitSourceSpec;
    const patched = this.patch(chainTree, chain.patches, chain.checkout ? chain.name : undefined, chain.checkout);
    const used = chain.uses.map((u) => this.toolchain(u.toolchain, `toolchain ${chain.name}`));
    return this.add(
      'toolchain',
      chain.name,
      [patched, ...used],
      {
        recipe: chain.name,
        version: chain.version,
        commands: chain.commands,
        outputs: chain.outputs,
        ...(chain.uses.length ? { uses: chain.uses } : {}),
        provides: chain.provides,
        host: this.input.host,
      },
      { file: chain.file, phases: chain.phases, hints: chain.hints },
    );
  }

  /** A target: its package, and its image and publish steps when it has an image. */
  target(target: TargetRecipe): void {
    const toolchain = this.toolchain(target.toolchain, `target ${target.name}`);
    const chain = this.input.recipes.toolchains.get(target.toolchain) as ToolchainRecipe;
    const { pkg, tree } = this.package(target, toolchain, chain);
    if (!target.image) return;
    const image = this.image(target, target.image, pkg, toolchain, chain, tree);
    this.publish(target, target.image.repository, image, toolchain);
  }

  private package(target: TargetRecipe, toolchain: string, chain: ToolchainRecipe) {
    const deps = [toolchain];
    let tree: string | undefined;
    if (target.build.tree !== 'toolchain') {
      const spec = target.sources.find((s) => s.name === target.build.tree) as GitSourceSpec;
      tree = this.patch(spec, target.patches, target.patches.length ? target.name : undefined);
      deps.push(tree);
    }
    const tarballs = target.sources.filter((s) => s.kind === 'tarball');
    for (const t of tarballs) deps.push(this.fetch(t));
    const pkg = this.add(
      'package',
      target.name,
      deps,
      {
        recipe: target.name,
        version: target.version,
        toolchain,
        tree: target.build.tree,
        configMk: target.build.configMk,
        commands: target.build.commands,
        ...(target.manifest ? { manifest: target.manifest } : {}),
        artifacts: target.artifacts,
        tarballs: tarballs.flatMap((t) =>
          t.kind === 'tarball'
            ? [{ name: t.name, file: t.file, placeIn: t.placeIn ?? '.', fetch: this.fetchOf(t) }]
            : [],
        ),
        ...(chain.provides.bin ? { bin: chain.provides.bin } : {}),
        host: this.input.host,
      },
      { file: target.file },
    );
    return { pkg, tree };
  }

  private image(
    target: TargetRecipe,
    spec: ImageSpec,
    pkg: string,
    toolchain: string,
    chain: ToolchainRecipe,
    tree: string | undefined,
  ): string {
    const chainTree = this.chainSource(chain);
    const patched = this.step(toolchain).deps[0] as string;
    // Labels and the SBOM name where things came from, so URLs are inputs of the image step (only).
    const components = [chainTree, ...target.sources].map((s) => {
      const r = s === chainTree ? s : this.source(s);
      return r.kind === 'git'
        ? { ...sourceIdentity(r), url: r.git, submodules: flattenSubmodules(r.submodules) }
        : { ...sourceIdentity(r), url: r.urls[0] };
    });
    const origin =
      target.build.tree === 'toolchain'
        ? chainTree
        : (this.source(target.sources.find((s) => s.name === target.build.tree) as GitSourceSpec) as GitSourceSpec);
    return this.add('image', target.name, [pkg], {
      recipe: target.name,
      version: target.version,
      license: target.license,
      homepage: target.homepage,
      description: target.description,
      image: spec,
      toolchain: { name: chain.name, facts: chain.facts, key: this.step(toolchain).key },
      patchesDigest: `sha256:${contentKey([seriesOf(this.step(patched)), tree ? seriesOf(this.step(tree)) : []])}`,
      origin: { name: origin.name, git: origin.git, rev: origin.rev },
      components,
      created: this.input.sourceDateEpoch ?? 'newest-source-commit',
      format: this.input.imageFormat ?? 'default',
    });
  }

  /** Publishing is a step of its own, never cached; a push boots the image first, with the tender of its toolchain. */
  private publish(target: TargetRecipe, repository: string, image: string, toolchain: string) {
    const p = this.input.publish;
    if (!p || !(p.load || p.push || p.outputs.length > 0)) return;
    this.add(
      'publish',
      target.name,
      p.push ? [image, toolchain] : [image],
      {
        ...p,
        repository,
        version: target.version,
        toolchain,
        ...(target.smoke ? { smoke: target.smoke } : {}),
      },
      { file: target.file },
      false,
    );
  }
}

/**
 * `world` and `all` mean every base image (targets with an image); the runtime pieces (nabla-run, runnc) are
 * built by `runtime install` or by name. Unknown names are a usage error listing the known ones.
 */
export function expandTargets(recipes: RecipeSet, names: string[]): string[] {
  const out: string[] = [];
  for (const n of names) {
    if (n === 'world' || n === 'all')
      out.push(
        ...[...recipes.targets.values()]
          .filter((t) => t.image)
          .map((t) => t.name)
          .sort(),
      );
    else if (recipes.targets.has(n)) out.push(n);
    else
      throw new UsageError('plan.unknown-target', `unknown target "${n}"`, {
        hint: `nabla-build list  (known: ${[...recipes.targets.keys()].sort().join(', ')}, world)`,
      });
  }
  return [...new Set(out)];
}

/** What identifies a source's content: commits and checksums, not where it is downloaded from. */
export function sourceIdentity(spec: SourceSpec): { name: string; [field: string]: unknown } {
  if (spec.kind === 'tarball') return { name: spec.name, sha256: spec.sha256, file: spec.file };
  const subs = (list: GitSourceSpec['submodules']): unknown =>
    list.map((s) => ({ path: s.path, rev: s.rev, clone: s.clone, sparse: s.sparse, submodules: subs(s.submodules) }));
  return { name: spec.name, rev: spec.rev, sparse: spec.sparse, submodules: subs(spec.submodules) };
}

function flattenSubmodules(
  list: GitSourceSpec['submodules'],
  prefix = '',
): { path: string; url: string; rev: string }[] {
  return list.flatMap((s) => [
    { path: prefix + s.path, url: s.git, rev: s.rev },
    ...flattenSubmodules(s.submodules, `${prefix}${s.path}/`),
  ]);
}

function seriesDigest(s: PatchSeriesSpec, tree: GitSourceSpec, project: Record<string, string>): string {
  if (s.from === 'upstream') return `${tree.name}@${tree.rev}:${s.dir}`;
  const d = project[s.dir];
  if (d === undefined)
    throw new UsageError('plan.patches', `patch series patches/${s.dir} was not read`, {
      hint: `check that patches/${s.dir} exists`,
    });
  return d;
}

/** The patch series of a patch step. */
function seriesOf(step: PlanStep | undefined): unknown {
  return step?.kind === 'patch' ? step.inputs.patches : [];
}
