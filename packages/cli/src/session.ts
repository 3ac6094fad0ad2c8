import { type CompletedStep, runPlan } from '@nabla-build/engine';
import type { BuildPlan } from '@nabla-build/model';
import type { PublishOptions } from '@nabla-build/plan';
import type { CredentialStore } from '@nabla-build/registry';
import type { PublishedImage } from '@nabla-build/steps';
import { createExecutors } from '@nabla-build/steps/executors';
import type { Project } from './context.js';
import { note } from './output.js';
import { makePlan } from './planning.js';
import { emptyReport, openRemoteCache, type RemoteReport, remoteCacheRefs, remoteSummary } from './remote-cache.js';
import { Progress } from './render/progress.js';

export interface SessionOptions {
  /** Run every step that does not depend on a failure and report all failures (`fetch`). */
  keepGoing?: boolean;
  /** Keep the tree of a failed resumable step (`--keep-failed`). */
  keepFailed?: boolean;
  publish?: PublishOptions;
  smokeBeforePush?: boolean;
  /** Steps to complete instead of the plan's final ones (e.g. `image:hello` and `toolchain:frankenlibc`). */
  want?: (plan: BuildPlan) => string[];
  /** Keep only these step kinds (e.g. fetch). */
  only?: BuildPlan['steps'][number]['kind'][];
  /** Shared step caches (`--cache-from`/`--cache-to`); default: the config file's and NABLA_BUILD_CACHE_FROM/TO. */
  remote?: { from: string[]; to: string[] };
  /**
   * Filled while the session runs, so a caller still knows what happened when it fails (`--json` prints every
   * target's outcome even then): the plan, what was published, which steps finished and which failed.
   */
  record?: SessionRecord;
  /** `--compression` (gzip, gzip:N, zstd[:N], none); default gzip. */
  compression?: string;
}

export interface SessionRecord {
  plan?: BuildPlan;
  published: PublishedImage[];
  finished: Set<string>;
  failed: { step: string; error: unknown }[];
}

export function emptyRecord(): SessionRecord {
  return { published: [], finished: new Set(), failed: [] };
}

export interface SessionResult {
  plan: BuildPlan;
  steps: Map<string, CompletedStep>;
  published: PublishedImage[];
  /** What the shared step caches did, when any was set. */
  remote?: RemoteReport;
}

/**
 * Plans, wires the adapters and walks the plan with progress on stderr and SIGINT/SIGTERM turned into a
 * clean cancellation (finished steps stay cached, the interrupted one stays incomplete, a rerun resumes).
 */
export async function runSession(project: Project, targets: string[], o: SessionOptions = {}): Promise<SessionResult> {
  const { settings } = project;
  let plan = await makePlan(project, targets, o.publish, o.compression);
  if (o.only) plan = { ...plan, steps: plan.steps.filter((s) => o.only?.includes(s.kind)) };
  const published: PublishedImage[] = o.record?.published ?? [];
  if (o.record) o.record.plan = plan;
  const executors = createExecutors({
    cacheDir: settings.cacheDir,
    patchesDir: settings.patchesDir,
    mirrors: settings.mirrors,
    allowLocal: settings.config.allowLocal,
    offline: settings.offline,
    targets: plan.targets,
    env: process.env,
    publish: {
      insecureRegistries: settings.insecureRegistries,
      smokeBeforePush: o.smokeBeforePush ?? true,
      credentials: (registry): CredentialStore => {
        // The registry client loads with the first credential a push asks for, not before the first step.
        let store: Promise<CredentialStore> | undefined;
        return {
          get: async (host) => {
            store ??= import('@nabla-build/registry').then((r) =>
              r.dockerCredentials({ env: process.env, ...(registry ? { envRegistry: registry } : {}) }),
            );
            return (await store).get(host);
          },
        };
      },
      onPublished: (p) => published.push(p),
    },
  });
  const progress = new Progress({ verbose: settings.verbose, mode: settings.progress });
  const controller = new AbortController();
  const stop = (sig: NodeJS.Signals) => {
    note(`\n${sig}: stopping (finished steps stay cached; run the same command again to resume)`);
    controller.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const refs = o.remote ?? remoteCacheRefs({}, settings);
  const report = emptyReport(refs.from, refs.to);
  const remote = await openRemoteCache(
    settings,
    refs,
    report,
    controller.signal,
    settings.quiet,
    o.publish?.naming.registry,
    plan.steps.flatMap((s) => (s.kind === 'toolchain' || s.kind === 'package' ? [{ ...s.inputs.host }] : []))[0],
  );
  progress.start(plan);
  /** 0: nothing warmed; 1: the spawner; 2: every adapter of the plan. */
  let warmed = 0;
  try {
    const steps = await runPlan(plan, {
      cacheDir: settings.cacheDir,
      executors: executors.byKind,
      jobs: settings.jobs,
      signal: controller.signal,
      onEvent: (e) => {
        // Code for later steps loads while earlier ones wait on their processes: the spawner once the first
        // step runs (fetches wait on git; patches need it next), the other adapters once a native build runs
        // (the longest wait; earlier, their ~0.3 s of CPU would hold up the fetch and patch steps).
        if (e.type === 'start' && warmed < 2) {
          const all = e.step.kind === 'toolchain' || e.step.kind === 'package';
          if (warmed === 0 || all) {
            const kinds = all ? plan.steps.map((s) => s.kind) : [];
            setImmediate(() => executors.warm(kinds).catch(() => {}));
            warmed = all ? 2 : 1;
          }
        }
        if (e.type === 'remote-failed') {
          const message = `the entry of ${e.step.id} from ${e.source} is unusable (${e.reason}): building it here`;
          report.warnings.push(message);
          if (!settings.quiet) note(`warning: ${message}`);
        }
        if (o.record) {
          if (e.type === 'done' || e.type === 'cached') o.record.finished.add(e.step.id);
          else if (e.type === 'failed') o.record.failed.push({ step: e.step.id, error: e.error });
        }
        progress.onEvent(e);
      },
      ...(o.want ? { want: o.want(plan) } : {}),
      ...(o.keepGoing ? { keepGoing: true } : {}),
      ...(o.keepFailed ? { keepFailed: true } : {}),
      ...(remote ? { remote } : {}),
    });
    if (!remote) return { plan, steps, published };
    report.misses = [...steps.values()].filter((s) => s.remote?.status === 'miss').map((s) => s.step.id);
    report.bytesDownloaded = remote.cache.bytesDownloaded;
    if (!settings.quiet) note(remoteSummary(report));
    return { plan, steps, published, remote: report };
  } finally {
    await progress.finish();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}
