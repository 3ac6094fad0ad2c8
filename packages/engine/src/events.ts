import type { PlanStep } from '@nabla-build/model';

/** What the engine reports while it walks a plan. It never prints: renderers in the CLI turn these into output. */
export type EngineEvent =
  | { type: 'cached'; step: PlanStep }
  | { type: 'start'; step: PlanStep; resumed: boolean }
  | { type: 'waiting'; step: PlanStep; holder: string }
  | { type: 'output'; step: PlanStep; line: string }
  | { type: 'phase'; step: PlanStep; phase: string }
  | { type: 'done'; step: PlanStep; durationMs: number }
  /** `kept`: the failed attempt's directory, left in place by keepFailed (otherwise it is removed). */
  | { type: 'failed'; step: PlanStep; error: unknown; kept?: string }
  | { type: 'corrupt'; step: PlanStep; reason: string }
  /** A remote cache has the step: downloading it instead of building. */
  | { type: 'pulling'; step: PlanStep; source: string; bytes: number; received?: number }
  | { type: 'pulled'; step: PlanStep; source: string; bytes: number; durationMs: number }
  /** A remote entry was found but could not be used (damaged, truncated, unreachable): the step is built. */
  | { type: 'remote-failed'; step: PlanStep; source: string; reason: string };

export type EventSink = (event: EngineEvent) => void;
