import type { BuildPlan } from '@nabla-build/model';
import type { PublishedImage } from '@nabla-build/steps';
import type { SessionRecord } from './session.js';

/** What happened to one target of a build: the `results` of `--json`, printed whether the build failed or not. */
export interface TargetOutcome {
  target: string;
  /** `published`: every output written (pushes with digests); `built`: no output asked; `failed`; `skipped`. */
  status: 'published' | 'built' | 'failed' | 'skipped';
  /** What was published for it (also for a failed target: an OCI directory written before its push failed). */
  published: PublishedImage[];
  /** For `failed`: the step and the error as the user sees it. */
  failedStep?: string;
  error?: { code?: string; message: string; where?: string; hint?: string; logPath?: string };
  /** For `skipped`: why it did not finish. */
  reason?: string;
}

/** Every target's outcome from what a session recorded (complete or not). */
export function targetOutcomes(plan: BuildPlan, record: SessionRecord): TargetOutcome[] {
  const byId = new Map(plan.steps.map((s) => [s.id, s]));
  const hasDependents = new Set(plan.steps.flatMap((s) => s.deps));
  return plan.targets.map((target) => {
    const finals = plan.steps.filter((s) => s.subject === target && !hasDependents.has(s.id)).map((s) => s.id);
    const closure = new Set<string>();
    const walk = (id: string) => {
      if (closure.has(id)) return;
      closure.add(id);
      for (const d of byId.get(id)?.deps ?? []) walk(d);
    };
    for (const f of finals) walk(f);
    const published = record.published.filter((p) => p.target === target);
    const failed = record.failed.find((f) => closure.has(f.step));
    if (failed) return { target, status: 'failed', published, failedStep: failed.step, error: describe(failed.error) };
    if (finals.length > 0 && finals.every((f) => record.finished.has(f))) {
      const publishes = finals.some((f) => byId.get(f)?.kind === 'publish');
      return { target, status: publishes ? 'published' : 'built', published };
    }
    const first = record.failed[0];
    return {
      target,
      status: 'skipped',
      published,
      reason: first
        ? `not finished: the build stopped when ${first.step} failed`
        : 'not finished: the build was stopped',
    };
  });
}

function describe(err: unknown): NonNullable<TargetOutcome['error']> {
  const e = err as { code?: unknown; message?: unknown; where?: unknown; hint?: unknown; logPath?: unknown };
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const out: NonNullable<TargetOutcome['error']> = { message: str(e?.message) ?? String(err) };
  for (const k of ['code', 'where', 'hint', 'logPath'] as const) {
    const v = str(e?.[k]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}
