import { join } from 'node:path';
import { acquireLock } from '@nabla-build/fsio';
import {
  BuildError,
  type BuildPlan,
  CancelledError,
  type EntryManifest,
  NablaError,
  type PlanStep,
  type StepKind,
  withContext,
} from '@nabla-build/model';
import type { EventSink } from './events.js';
import { pullEntry, type RemoteCache } from './remote.js';
import { Semaphore } from './semaphore.js';
import { StepStore, verifyEntryFiles } from './store.js';

/** A finished step as the steps that depend on it see it. */
export interface CompletedStep {
  step: PlanStep;
  /** The entry directory (stable for the key). */
  dir: string;
  result: unknown;
  cached: boolean;
  /** Set when a remote cache was asked: `hit` (pulled from `source`) or `miss` (built here, or found locally later). */
  remote?: { status: 'hit' | 'miss'; source?: string; bytes?: number };
}

export interface StepContext {
  /** Where the step writes its outputs; stable for the key, empty unless `resumed`. */
  dir: string;
  /** True when a previous attempt was interrupted and the executor asked to keep its directory. */
  resumed: boolean;
  deps: Map<string, CompletedStep>;
  signal: AbortSignal;
  logFile: string;
  jobs: number;
  output(line: string): void;
  phase(name: string): void;
}

/** What an executor hands back: the paths to protect with the integrity manifest, and a JSON result. */
export interface StepOutcome {
  roots: string[];
  result?: unknown;
}

export interface StepExecutor {
  run(step: PlanStep, ctx: StepContext): Promise<StepOutcome>;
  /** Keep an interrupted attempt's directory and let the executor continue it (incremental native builds). */
  resumable?: boolean;
}

export interface EngineOptions {
  cacheDir: string;
  executors: Partial<Record<StepKind, StepExecutor>>;
  jobs: number;
  signal?: AbortSignal;
  onEvent?: EventSink;
  /** Step ids to complete (default: the plan's final steps, those nothing else depends on). */
  want?: string[];
  /**
   * A cache shared between machines: asked on a local miss before the step (or anything it needs) runs; every
   * completed step is handed to it for publishing in the background. Runs finish only when its pushes have.
   */
  remote?: RemoteCache;
  /**
   * Keep the directory of a failed attempt of a resumable step (a native build tree, to inspect it or to resume
   * from it on the next run). By default a failed attempt's directory is removed and only its log is kept; an
   * interrupted (cancelled) attempt of a resumable step is always kept, so the same command resumes it (that of
   * any other step is removed like a failed one).
   */
  keepFailed?: boolean;
  /**
   * A failed step does not cancel the others: everything that does not depend on a failure still runs, and
   * when more than one step failed the run rejects with a StepFailures listing all of them (`fetch`: every
   * missing source at once). Default: the first failure cancels the run.
   */
  keepGoing?: boolean;
}

/** Several steps failed in one run (keepGoing): each failure, in plan order, as its step reported it. */
export class StepFailures extends BuildError {
  constructor(readonly failures: { step: PlanStep; error: unknown }[]) {
    super('build.steps-failed', `${failures.length} steps failed: ${failures.map((f) => f.step.id).join(', ')}`);
  }
}

/**
 * Walks a plan from its final steps backwards: a step whose entry is in the cache is used as it is and its
 * inputs are never looked at, so a fully cached build touches only the last entries. Missing steps run once
 * their deps are complete, at most `jobs` at a time, each under an inter-process lock on its key so two
 * processes sharing one cache never build the same step twice.
 */
export async function runPlan(plan: BuildPlan, opts: EngineOptions): Promise<Map<string, CompletedStep>> {
  const store = new StepStore(opts.cacheDir);
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  // A place goes first to the step with the longest chain of work after it (the critical path; a native
  // build weighs more than a fetch): the fetch behind the toolchain before the tarballs only the package needs.
  const height = new Map<string, number>();
  const heightOf = (id: string): number => {
    const own = { toolchain: 10, package: 5 }[byId.get(id)?.kind as string] ?? 1;
    const h =
      height.get(id) ?? own + Math.max(0, ...plan.steps.filter((s) => s.deps.includes(id)).map((s) => heightOf(s.id)));
    height.set(id, h);
    return h;
  };
  const memo = new Map<string, Promise<CompletedStep>>();
  const emit = opts.onEvent ?? (() => {});
  const controller = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  const limit = new Semaphore(Math.max(1, opts.jobs), signal);

  const need = (id: string, forInput: boolean): Promise<CompletedStep> => {
    let p = memo.get(id);
    if (!p) {
      const step = byId.get(id);
      if (!step) throw new Error(`plan has no step ${id}`);
      p = complete(step, forInput);
      memo.set(id, p);
    }
    return p;
  };

  const cachedEntry = async (step: PlanStep, mode: 'quick' | 'full'): Promise<EntryManifest | undefined> => {
    if (!step.cacheable) return undefined;
    const unhold = limit.hold();
    const m = await store.read(step).finally(unhold);
    if (!m) return undefined;
    const problem = await verifyEntryFiles(store.dirFor(step), m.files, mode);
    if (!problem) return m;
    emit({ type: 'corrupt', step, reason: problem });
    await store.discard(step);
    return undefined;
  };

  const lockKey = (step: PlanStep) =>
    acquireLock(join(opts.cacheDir, 'locks', `${step.key}.lock`), {
      signal,
      onWait: (holder) => emit({ type: 'waiting', step, holder }),
    });

  const remote = opts.remote;
  const publish = (step: PlanStep, dir: string, m: EntryManifest, from?: string) => {
    if (!remote || !step.cacheable || !remote.shares(step)) return;
    try {
      remote.publish(step, dir, m, from);
    } catch {
      // Publishing is best effort by contract; an implementation that throws must not fail the build.
    }
  };

  /** A step found complete in the local cache: used as it is, and handed to the remote cache. */
  const useCached = (step: PlanStep, m: EntryManifest): CompletedStep => {
    const dir = store.dirFor(step);
    emit({ type: 'cached', step });
    publish(step, dir, m);
    return { step, dir, result: m.result, cached: true };
  };

  /**
   * Asks the remote cache before anything of the step runs (so a remotely cached image never pulls the
   * toolchain behind it). A usable entry is downloaded into a staging directory, checked against its own
   * integrity record and renamed into place under the key's lock; anything wrong is a miss.
   */
  const fromRemote = async (step: PlanStep): Promise<CompletedStep | 'miss' | undefined> => {
    if (!remote || !step.cacheable || !remote.shares(step)) return undefined;
    const found = await remote.lookup(step, signal);
    if (!found) return 'miss';
    const lock = await lockKey(step);
    try {
      const now = await cachedEntry(step, 'quick');
      if (now) return useCached(step, now);
      emit({ type: 'pulling', step, source: found.source, bytes: found.bytes });
      const started = Date.now();
      let received = 0;
      let told = started;
      const onBytes = (n: number) => {
        received += n;
        // At most four progress events a second per download.
        if (Date.now() - told < 250) return;
        told = Date.now();
        emit({ type: 'pulling', step, source: found.source, bytes: found.bytes, received });
      };
      let m: EntryManifest;
      try {
        m = await pullEntry(store, step, found, signal, onBytes);
      } catch (err) {
        if (signal.aborted) throw new CancelledError();
        emit({ type: 'remote-failed', step, source: found.source, reason: (err as Error).message ?? String(err) });
        return 'miss';
      }
      emit({ type: 'pulled', step, source: found.source, bytes: found.bytes, durationMs: Date.now() - started });
      const dir = store.dirFor(step);
      publish(step, dir, m, found.source);
      return {
        step,
        dir,
        result: m.result,
        cached: true,
        remote: { status: 'hit', source: found.source, bytes: found.bytes },
      };
    } finally {
      await lock.release();
    }
  };

  const complete = async (step: PlanStep, forInput: boolean): Promise<CompletedStep> => {
    const hit = await cachedEntry(step, forInput ? 'full' : 'quick');
    if (hit) return useCached(step, hit);
    const pulled = await fromRemote(step);
    if (pulled && pulled !== 'miss') return pulled;
    const missed = pulled === 'miss' ? ({ status: 'miss' } as const) : undefined;
    const deps = new Map<string, CompletedStep>();
    for (const d of await Promise.all(step.deps.map((id) => need(id, true)))) deps.set(d.step.id, d);
    if (signal.aborted) throw new CancelledError();
    const executor = opts.executors[step.kind];
    if (!executor) throw new Error(`no executor for ${step.kind} steps`);
    const dir = store.dirFor(step);
    const release = await limit.acquire(heightOf(step.id));
    let attempted = false;
    let kept = false;
    let logFile: string | undefined;
    try {
      const lock = step.cacheable ? await lockKey(step) : undefined;
      try {
        // Another process may have finished it while we waited for the lock.
        const now = await cachedEntry(step, 'quick');
        if (now) {
          emit({ type: 'cached', step });
          return { step, dir, result: now.result, cached: true, ...(missed ? { remote: missed } : {}) };
        }
        const started = Date.now();
        const prepared = step.cacheable
          ? await store.prepare(step, executor.resumable === true)
          : { dir, resumed: false };
        attempted = step.cacheable;
        emit({ type: 'start', step, resumed: prepared.resumed });
        logFile = store.logFor(step);
        const outcome = await executor.run(step, {
          dir: prepared.dir,
          resumed: prepared.resumed,
          deps,
          signal,
          logFile,
          jobs: opts.jobs,
          output: (line) => emit({ type: 'output', step, line }),
          phase: (name) => emit({ type: 'phase', step, phase: name }),
        });
        if (signal.aborted) throw new CancelledError();
        if (step.cacheable)
          publish(step, prepared.dir, await store.commit(step, outcome.roots, outcome.result ?? null));
        emit({ type: 'done', step, durationMs: Date.now() - started });
        return {
          step,
          dir: prepared.dir,
          result: outcome.result ?? null,
          cached: false,
          ...(missed ? { remote: missed } : {}),
        };
      } catch (err) {
        // A failed or interrupted attempt leaves only its log behind (removed under the key's lock, so never a
        // directory another process has started since), unless the step resumes from its leftovers (native
        // builds): an interrupted one is kept for the next run, a failed one when keepFailed asks.
        kept = attempted && executor.resumable === true && (err instanceof CancelledError || opts.keepFailed === true);
        if (attempted && !kept) await store.discard(step).catch(() => {});
        throw err;
      } finally {
        await lock?.release();
      }
    } catch (err) {
      if (!(err instanceof CancelledError)) {
        if (attempted && !kept) {
          // Never point the user into the tree that was just removed.
          const gone = store.dirFor(step);
          if (err instanceof NablaError && (err.where === gone || err.where?.startsWith(`${gone}/`)))
            (err as { where?: string }).where = undefined;
        }
        // Every failed step names its log, whichever layer threw.
        if (logFile && err instanceof NablaError && err.logPath === undefined)
          (err as { logPath?: string }).logPath = logFile;
        emit({ type: 'failed', step, error: err, ...(kept ? { kept: store.dirFor(step) } : {}) });
        // One failure stops the build: siblings in flight are cancelled (only resumable ones keep their trees).
        if (opts.keepGoing !== true) controller.abort(err);
      }
      throw withSubject(err, stepSubject(step));
    } finally {
      release();
    }
  };

  const finals = opts.want ?? plan.steps.filter((s) => !plan.steps.some((o) => o.deps.includes(s.id))).map((s) => s.id);
  const settled = await Promise.allSettled(finals.map((id) => need(id, false)));
  // Pushes run in the background of the build; the run is over when they are.
  await remote?.idle().catch(() => {});
  if (opts.keepGoing === true) {
    // Every distinct failure once (a step that failed because a dependency did reports the dependency's error).
    const failures: { step: PlanStep; error: unknown }[] = [];
    for (const [id, p] of memo) {
      const r = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      if (r === undefined || r instanceof CancelledError || failures.some((f) => f.error === r)) continue;
      failures.push({ step: byId.get(id) as PlanStep, error: r });
    }
    const order = new Map(plan.steps.map((s, i) => [s.id, i]));
    failures.sort((a, b) => (order.get(a.step.id) ?? 0) - (order.get(b.step.id) ?? 0));
    // Bad input (exit 2) is the same mistake wherever it shows: reported once, on its own.
    const badInput = failures.find((f) => f.error instanceof NablaError && f.error.exitCode === 2);
    if (badInput) throw badInput.error;
    if (failures.length === 1) throw failures[0]?.error;
    if (failures.length > 1) throw new StepFailures(failures);
  }
  const rejected = settled.filter((r) => r.status === 'rejected');
  const failure = rejected.find((r) => !(r.reason instanceof CancelledError)) ?? rejected[0];
  if (failure) throw failure.reason;
  const out = new Map<string, CompletedStep>();
  for (const [id, p] of memo) out.set(id, await p);
  return out;
}

/**
 * Prefixes an error with what was being done, unless its message already says which subject it is about
 * ("building toolchain frankenlibc (…)", "source nginx: …"): an error never repeats itself.
 */
export function withSubject(err: unknown, subject: string): unknown {
  if (!(err instanceof NablaError)) return err;
  const name = subject.split(' ').pop() as string;
  const head = err.message.split(': ')[0] ?? '';
  const mentions = (n: string) =>
    new RegExp(`(^|[\\s(/@])${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[\\s):/@])`).test(head);
  if (err.message.startsWith(subject) || mentions(name) || mentions(name.split('@')[0] as string)) return err;
  return withContext(err, subject);
}

function stepSubject(step: PlanStep): string {
  const verb: Record<StepKind, string> = {
    fetch: 'fetching',
    patch: 'preparing and patching',
    toolchain: 'building toolchain',
    package: 'building',
    image: 'assembling the image of',
    publish: 'publishing',
  };
  return `${verb[step.kind]} ${step.subject}`;
}
