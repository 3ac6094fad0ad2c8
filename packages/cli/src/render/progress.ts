import type { EngineEvent } from '@nabla-build/engine';
import type { BuildPlan, PlanStep } from '@nabla-build/model';
import { Listr, ListrLogger, ListrLogLevels, type ListrTask, ProcessOutput } from 'listr2';
import { human } from '../output.js';
import { heartbeatInterval, PlainReporter } from './heartbeat.js';

type Outcome =
  | { kind: 'cached' | 'done'; note?: string }
  | { kind: 'failed'; error: unknown }
  | { kind: 'unused'; reason: string };

/**
 * Shows engine events with listr2: the live renderer on a terminal, plain lines (listr2's `simple` renderer)
 * when CI is set or stderr is not a TTY. Every step of the plan is a task that waits for its events; steps
 * never visited (because something after them was cached) end as "not needed". All output goes to stderr.
 */
export class Progress {
  private readonly pending = new Map<string, ReturnType<typeof deferred>>();
  private readonly tasks = new Map<string, { output?: string; title: string }>();
  private listr: Promise<unknown> | undefined;
  /** Phase lines and heartbeats, on the plain renderer only (the live view shows both in its task titles). */
  private reporter: PlainReporter | undefined;
  private plan: BuildPlan | undefined;
  private firstFailure: string | undefined;
  private readonly cached = new Set<string>();

  /**
   * `mode` (--progress / NABLA_BUILD_PROGRESS): `auto` is the live view on a terminal and plain lines when CI
   * is set, stderr is not a TTY or --verbose is given; `tty` always the live view; `plain` always lines;
   * `quiet` nothing (errors are still reported by the CLI).
   */
  constructor(
    private readonly opts: { verbose: boolean; env?: NodeJS.ProcessEnv; mode?: 'auto' | 'tty' | 'plain' | 'quiet' },
  ) {}

  start(plan: BuildPlan): void {
    const env = this.opts.env ?? process.env;
    const mode = this.opts.mode ?? 'auto';
    if (mode === 'quiet') return;
    this.plan = plan;
    // A terminal that reports no width (0 columns, as some CI pseudo-terminals do) gets plain lines too.
    const narrow = (process.stderr.columns ?? 0) < 20;
    const plain =
      mode === 'plain' ||
      (mode === 'auto' && (Boolean(env.CI) || !process.stderr.isTTY || narrow || this.opts.verbose));
    const output = new ProcessOutput(process.stderr, process.stderr);
    if (plain)
      this.reporter = new PlainReporter({
        intervalMs: heartbeatInterval(env),
        write: (line) => process.stderr.write(`  ${line}\n`),
        title: (e) => title(e.step).replace(/\s+/, ' '),
      });
    const tasks: ListrTask[] = plan.steps.map((step) => {
      const d = deferred();
      this.pending.set(step.id, d);
      return {
        title: title(step),
        task: async (_ctx, task) => {
          this.tasks.set(step.id, task as never);
          const outcome = await d.promise;
          if (outcome.kind === 'cached') task.title = `${title(step)} (${outcome.note ?? 'cached'})`;
          else if (outcome.kind === 'unused') task.skip(outcome.reason);
          else if (outcome.kind === 'failed')
            throw outcome.error instanceof Error ? new Error(outcome.error.message) : new Error(String(outcome.error));
          else task.title = `${title(step)}${outcome.note ? ` (${outcome.note})` : ''}`;
        },
      };
    });
    const listr = new Listr(tasks, {
      concurrent: true,
      exitOnError: false,
      registerSignalListeners: false,
      renderer: 'default',
      fallbackRenderer: 'simple',
      fallbackRendererCondition: () => plain,
      rendererOptions: {
        processOutput: output,
        collapseSubtasks: false,
        collapseErrors: true,
        showErrorMessage: false,
      },
      // The simple renderer writes through a logger; give it one whose "stdout" is stderr too.
      fallbackRendererOptions: {
        logger: new ListrLogger({ processOutput: output, toStderr: Object.values(ListrLogLevels) }),
      },
    } as never);
    this.listr = listr.run().catch(() => undefined);
  }

  onEvent = (e: EngineEvent): void => {
    this.reporter?.onEvent(e);
    const d = this.pending.get(e.step.id);
    const task = this.tasks.get(e.step.id);
    switch (e.type) {
      case 'cached':
        this.cached.add(e.step.id);
        d?.resolve({ kind: 'cached' });
        break;
      case 'done':
        d?.resolve({ kind: 'done', note: seconds(e.durationMs) });
        break;
      case 'failed':
        this.firstFailure ??= e.step.id;
        d?.resolve({ kind: 'failed', error: e.error });
        break;
      case 'phase':
        if (task) task.title = `${title(e.step)}: ${e.phase}`;
        break;
      case 'output':
        if (task && this.opts.verbose) task.output = e.line;
        break;
      case 'waiting':
        if (task) task.output = `waiting for ${e.holder}, which is building the same step`;
        break;
      case 'corrupt':
        if (task) task.output = `cache entry failed its integrity check (${e.reason}): rebuilding`;
        break;
      case 'pulling':
        if (task)
          task.output =
            e.received === undefined
              ? `downloading ${human(e.bytes)} from ${e.source}`
              : `downloading ${human(e.received)} of ${human(e.bytes)} from ${e.source}`;
        break;
      case 'pulled':
        this.cached.add(e.step.id);
        d?.resolve({ kind: 'cached', note: `from ${e.source}: ${human(e.bytes)} in ${seconds(e.durationMs)}` });
        break;
      case 'remote-failed':
        if (task) task.output = `the entry from ${e.source} is unusable (${e.reason}): building it here`;
        break;
      case 'start':
        if (task && e.resumed) task.output = 'resuming an interrupted attempt';
        break;
    }
  };

  async finish(): Promise<void> {
    this.reporter?.stop();
    for (const [id, d] of this.pending) d.resolve({ kind: 'unused', reason: this.unusedReason(id) });
    await this.listr;
  }

  /** Why a step did not run: another step failed, the build was stopped, or a later step was cached. */
  private unusedReason(id: string): string {
    if (this.firstFailure) return `not run: the build stopped when ${this.firstFailure} failed`;
    const steps = this.plan?.steps ?? [];
    const dependents = (x: string) => steps.filter((s) => s.deps.includes(x)).map((s) => s.id);
    const seen = new Set<string>();
    const queue = dependents(id);
    while (queue.length > 0) {
      const next = queue.shift() as string;
      if (seen.has(next)) continue;
      seen.add(next);
      if (this.cached.has(next)) return 'not needed: a later step is cached';
      queue.push(...dependents(next));
    }
    return 'not run: the build was stopped';
  }
}

function title(step: PlanStep): string {
  return `${step.kind.padEnd(9)} ${step.subject}`;
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** A promise and its resolve (a second resolve is a no-op, as for every promise). */
function deferred() {
  let resolve!: (o: Outcome) => void;
  const promise = new Promise<Outcome>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
