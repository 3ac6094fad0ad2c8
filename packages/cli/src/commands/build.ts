import { UsageError } from '@nabla-build/model';
import type { CommandModule, Options } from 'yargs';
import type { CompletedStep } from '@nabla-build/engine';
import type { BuildPlan } from '@nabla-build/model';
import type { GlobalArgs } from '../context.js';
import { recordStamp } from '../fast-path.js';
import type { CommandResult } from './result.js';
import { repeatable } from '../settings/values.js';
import { human, json, note, out, table } from '../output.js';
import type { RemoteCacheArgs } from '../remote-cache.js';

export interface BuildArgs extends GlobalArgs {
  targets: string[];
  load?: boolean;
  push?: boolean;
  output?: string[];
  tag?: string[];
  namespace?: string;
  registry?: string;
  test?: boolean;
  dryRun?: boolean;
  label?: string[];
  annotation?: string[];
  platform?: string;
  compression?: string;
  keepFailed?: boolean;
}

/** The only platform LKL Nabla unikernels exist for (x86_64 Solo5 spt binaries). */
const PLATFORM = 'linux/amd64';

/** Options only `build` has: grouped apart in --help so they are not read as global ones. */
export const BUILD_OPTIONS: Record<string, Options> = {
  load: {
    type: 'boolean',
    describe: 'load images into the Docker engine (default when one is reachable and nothing else is asked)',
  },
  push: { type: 'boolean', describe: 'push images to the registry (--registry/--namespace or config)' },
  output: {
    alias: 'o',
    type: 'string',
    coerce: repeatable,
    describe: 'also write oci:<dir> or tar:<file> (repeatable)',
  },
  tag: { alias: 't', type: 'string', coerce: repeatable, describe: 'extra tag for every image (repeatable)' },
  namespace: { type: 'string', describe: 'registry namespace (Docker Hub user or organisation)' },
  registry: { type: 'string', describe: 'registry host (default docker.io when --namespace is set)' },
  label: { type: 'string', coerce: repeatable, describe: 'image label k=v, over the recipe labels (repeatable)' },
  annotation: { type: 'string', coerce: repeatable, describe: 'OCI manifest annotation k=v (repeatable)' },
  platform: { type: 'string', describe: `target platform: only ${PLATFORM} exists` },
  test: { type: 'boolean', default: true, describe: 'boot-test each image before pushing it (--no-test skips)' },
  'dry-run': {
    type: 'boolean',
    describe: 'print what would be built and published (image references, steps), build nothing',
  },
  json: { type: 'boolean', describe: 'print a JSON summary on stdout' },
  'keep-failed': {
    type: 'boolean',
    describe: 'keep the tree of a failed native build (toolchain) to inspect or resume it; default: removed, log kept',
  },
  compression: {
    type: 'string',
    describe: 'image layer compression: gzip (default, level 6), gzip:1…9, zstd[:1…19] or none (part of the image key)',
  },
};

/** `argv`: the command line as typed, so a finished build can leave a stamp for the up-to-date check. */
export function buildCommand(result: CommandResult, argv: readonly string[] = []): CommandModule<object, BuildArgs> {
  return {
    command: ['$0 <targets..>', 'build <targets..>'],
    describe: 'build targets (world = every base image); by default load them into the local Docker engine',
    builder: (y) =>
      y
        .positional('targets', {
          type: 'string',
          array: true,
          demandOption: true,
          describe: 'targets (see `list`), or world/all',
        })
        .options(BUILD_OPTIONS)
        .group(Object.keys(BUILD_OPTIONS), 'Build options (nabla-build [build] <target...>):') as never,
    handler: async (args) => {
      result.exitCode = await build(args, argv);
    },
  };
}

export async function build(args: BuildArgs, argv: readonly string[] = []): Promise<number> {
  // Subpaths, not the package: the step adapters load once the first steps run (session.ts).
  const [{ loadProject }, { runSession }, { completedOf }, { dockerReachable }] = await Promise.all([
    import('../context.js'),
    import('../session.js'),
    import('@nabla-build/steps/source-context'),
    import('@nabla-build/steps/docker'),
  ]);
  const explicit = args.load !== undefined || args.push || (args.output?.length ?? 0) > 0;
  // Whether to load into the engine is asked (an import and a ping) while the project loads.
  const reachable = args.load ?? (explicit ? false : dockerReachable().catch(() => false));
  const project = await loadProject(args, { plans: true });
  const { settings } = project;
  if (args.platform !== undefined && args.platform !== PLATFORM)
    throw new UsageError(
      'usage',
      `--platform ${args.platform}: LKL Nabla images exist only for ${PLATFORM} (x86_64 unikernels for the Solo5 spt tender)`,
      { hint: `drop --platform, or pass --platform ${PLATFORM}` },
    );
  applyImageMetadata(project.recipes, pairs(args.label, '--label'), pairs(args.annotation, '--annotation'));
  for (const o of args.output ?? []) {
    if (!/^(oci|tar):.+/.test(o))
      throw new UsageError('usage', `--output ${o}: expected oci:<dir> or tar:<file>`, { hint: 'nabla-build --help' });
  }
  const registry =
    args.registry ??
    settings.config.registry ??
    ((args.namespace ?? settings.config.namespace) ? 'docker.io' : undefined);
  const namespace = args.namespace ?? settings.config.namespace;
  if (args.push && !registry)
    throw new UsageError('usage', '--push needs a destination', {
      hint: 'add --registry <host> and/or --namespace <user>, or set them in the config',
    });
  const load = await reachable;
  const naming = { extraTags: args.tag ?? [], ...(registry ? { registry } : {}), ...(namespace ? { namespace } : {}) };
  // Catch a bad tag, registry or namespace now, not after the build.
  const { imageName, imageTags } = await import('@nabla-build/plan');
  imageTags('1.0.0', '0'.repeat(64), naming);
  if (args.push)
    (await import('@nabla-build/registry')).parseReference(`${imageName('lkl-nabla-check-base', naming)}:latest`);
  const publish = { load, push: args.push ?? false, outputs: args.output ?? [], naming };
  const { checkRequires } = await import('../requires.js');
  await checkRequires(project, args.targets);
  // Everything the outputs need is checked before the first step runs (exit 2 with the fix).
  const { preflight } = await import('../preflight.js');
  await preflight({
    load,
    loadExplicit: args.load === true,
    push: args.push ?? false,
    ...(registry ? { registry } : {}),
    outputs: args.output ?? [],
    several: new Set(args.targets).size > 1 || args.targets.some((t) => t === 'world' || t === 'all'),
  });
  if (args.dryRun) return dryRun(project, args, publish);
  const { remoteCacheRefs } = await import('../remote-cache.js');
  // --json prints every target's outcome even when the build fails: a CI job keeps the digests of what it pushed.
  const [{ emptyRecord }, { targetOutcomes }] = await Promise.all([import('../session.js'), import('../outcomes.js')]);
  const record = emptyRecord();
  const { plan, steps, published, remote } = await runSession(project, args.targets, {
    publish,
    record,
    smokeBeforePush: args.test ?? true,
    ...(args.keepFailed ? { keepFailed: true } : {}),
    ...(args.compression !== undefined ? { compression: args.compression } : {}),
    remote: remoteCacheRefs(args as RemoteCacheArgs, settings),
  }).catch((err: unknown) => {
    if (args.json && record.plan)
      json({
        ok: false,
        targets: record.plan.targets,
        results: targetOutcomes(record.plan, record),
        published: record.published,
      });
    throw err; // the error itself goes to stderr, with its exit code (1 for a failed build)
  });
  const stdout: string[] = [];
  const print = (text: string) => {
    stdout.push(text.endsWith('\n') ? text : `${text}\n`);
    out(text);
  };
  if (args.json) {
    const summary = {
      ok: true,
      targets: plan.targets,
      results: targetOutcomes(plan, record),
      published,
      steps: [...steps.values()].map((s) => ({
        id: s.step.id,
        key: s.step.key,
        cached: s.cached,
        ...(s.remote ? { remote: s.remote.status, ...(s.remote.source ? { source: s.remote.source } : {}) } : {}),
        dir: s.dir,
        result: s.result,
      })),
      ...(remote ? { remoteCache: remote } : {}),
    };
    print(JSON.stringify(summary, null, 2));
  } else {
    for (const p of published) print(p.reference);
    const rows = [['STEP', 'KEY', 'SIZE', 'WHERE']];
    const isFinal = (id: string) => !plan.steps.some((o) => o.deps.includes(id));
    for (const s of steps.values()) {
      if (s.step.kind !== 'image' && (s.step.kind !== 'package' || !isFinal(s.step.id))) continue;
      const r = s.result as { bytes?: number; artifacts?: { name: string; bytes: number }[] };
      const bytes = r.bytes ?? r.artifacts?.reduce((a, b) => a + b.bytes, 0) ?? 0;
      rows.push([s.step.id, s.step.key.slice(0, 16), human(bytes), s.dir]);
    }
    note(table(rows));
  }
  if (!explicit && !load) {
    // No engine answered and nothing else was asked: say where the images are and how to get them loaded.
    for (const s of steps.values()) {
      if (s.step.kind !== 'image') continue;
      note(
        `no Docker engine answered, so ${s.step.subject} was not loaded: its image is the OCI layout ${s.dir}/${completedOf(s, 'image').result.layout}; load it with \`nabla-build ${s.step.subject} --load\` once an engine runs, or write it elsewhere with \`--output oci:<dir>\` / \`--output tar:<file>\` (then \`docker load -i <file>\`)`,
      );
    }
  }
  await stampFinishedBuild(argv, plan, steps, published, stdout.join(''));
  return 0;
}

/**
 * Lets the next identical command answer from the up-to-date check (fast-path.ts): only for builds that
 * publish nothing outside the cache and the engine, so replaying their output is exactly what a full run does.
 */
async function stampFinishedBuild(
  argv: readonly string[],
  plan: BuildPlan,
  steps: Map<string, CompletedStep>,
  published: import('@nabla-build/steps').PublishedImage[],
  stdout: string,
): Promise<void> {
  if (published.some((p) => p.kind !== 'load')) return;
  const built = plan.steps.filter((s) => s.kind !== 'publish');
  const finals = built.filter((s) => !built.some((o) => o.deps.includes(s.id)));
  const entries = finals.flatMap((s) => {
    const done = steps.get(s.id);
    return done ? [{ dir: done.dir, key: s.key }] : [];
  });
  if (entries.length !== finals.length) return;
  const images = published.map((p) => {
    const image = [...steps.values()].find((s) => s.step.kind === 'image' && s.step.subject === p.target);
    const name = p.reference.slice(0, p.reference.length - (p.tags[p.tags.length - 1]?.length ?? 0) - 1);
    return {
      id: (image?.result as { configDigest?: string } | undefined)?.configDigest ?? '',
      refs: p.tags.map((t) => `${name}:${t}`),
    };
  });
  if (images.some((i) => !i.id)) return;
  await recordStamp(argv, process.env, { entries, images, stdout });
}

/**
 * `build --dry-run`: the plan, printed the way the build prints its results. stdout: the references the
 * publish steps would produce (a push shows `name:tag`, its digest exists only once pushed); stderr: every step
 * with what would happen to it. `--json`: the build's JSON summary with `dryRun: true`.
 */
async function dryRun(
  project: import('../context.js').Project,
  args: BuildArgs,
  publish: import('@nabla-build/plan').PublishOptions,
): Promise<number> {
  const [{ makePlan }, { cacheStatus }, { imageName, imageTags }] = await Promise.all([
    import('../planning.js'),
    import('@nabla-build/engine'),
    import('@nabla-build/plan'),
  ]);
  const { perTarget } = await import('@nabla-build/steps');
  const plan = await makePlan(project, args.targets, publish, args.compression);
  const status = await cacheStatus(plan, project.settings.cacheDir);
  const published: { target: string; kind: string; reference: string; tags: string[] }[] = [];
  for (const s of plan.steps.filter((x) => x.kind === 'publish')) {
    const image = plan.steps.find((x) => x.kind === 'image' && x.subject === s.subject);
    const i = s.inputs as { load: boolean; push: boolean; outputs: string[]; repository: string; version: string };
    if (!image) continue;
    const tags = imageTags(i.version, image.key, publish.naming);
    const name = imageName(i.repository, publish.naming);
    const immutable = tags[tags.length - 1] as string;
    const several = plan.targets.length > 1;
    for (const o of i.outputs) {
      const [kind, path] = [o.slice(0, 3), o.slice(4)];
      const dest = several ? perTarget(path, s.subject, kind) : path;
      published.push({ target: s.subject, kind, reference: `${kind}:${dest}`, tags });
    }
    if (i.load) published.push({ target: s.subject, kind: 'load', reference: `${name}:${immutable}`, tags });
    if (i.push) published.push({ target: s.subject, kind: 'push', reference: `${name}:${immutable}`, tags });
  }
  const verdict = (id: string) => {
    const st = status.get(id);
    return st === 'cached' ? 'cached' : st === 'always' ? 'would run (always)' : 'would run';
  };
  if (args.json) {
    json({
      dryRun: true,
      targets: plan.targets,
      published,
      steps: plan.steps.map((s) => ({
        id: s.id,
        key: s.key,
        cached: status.get(s.id) === 'cached',
        status: verdict(s.id),
      })),
    });
  } else {
    for (const p of published) out(p.reference);
    const rows = [['STEP', 'KEY', 'WOULD']];
    for (const s of plan.steps) rows.push([s.id, s.key.slice(0, 16), verdict(s.id)]);
    note(table(rows));
    const run = plan.steps.filter((s) => status.get(s.id) !== 'cached').length;
    note(`dry run: ${run} of ${plan.steps.length} steps would run; nothing was built or published`);
  }
  return 0;
}

/** `k=v` values of a repeatable option; a bad one is a usage error naming it. */
function pairs(values: string[] | undefined, option: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values ?? []) {
    const eq = v.indexOf('=');
    const key = eq > 0 ? v.slice(0, eq) : '';
    if (!/^[A-Za-z0-9][A-Za-z0-9._/-]*$/.test(key))
      throw new UsageError(
        'usage',
        `${option} ${JSON.stringify(v)}: expected key=value with a key of letters, digits, . _ - /`,
        {
          hint: `${option} org.opencontainers.image.vendor=ACME`,
        },
      );
    if (option === '--label' && key.startsWith('dev.nabla-build.'))
      throw new UsageError(
        'usage',
        `${option} ${key}: dev.nabla-build.* labels record what the image holds; they cannot be set`,
        {
          hint: 'use a key of your own namespace, e.g. com.example.team',
        },
      );
    out[key] = v.slice(eq + 1);
  }
  return out;
}

/**
 * Merges --label over every target's recipe `labels:` and sets --annotation as manifest annotations. Both are
 * image step inputs, so they are part of the image key: another label is another image, never a stale cache hit.
 */
function applyImageMetadata(
  recipes: import('@nabla-build/model').RecipeSet,
  labels: Record<string, string>,
  annotations: Record<string, string>,
): void {
  if (Object.keys(labels).length === 0 && Object.keys(annotations).length === 0) return;
  for (const t of recipes.targets.values()) {
    if (!t.image) continue;
    t.image = {
      ...t.image,
      labels: { ...t.image.labels, ...labels },
      ...(Object.keys(annotations).length ? { annotations: { ...t.image.annotations, ...annotations } } : {}),
    };
  }
}
