/**
 * Maps build log lines to the phases a recipe declares (`phases: [{match, phase}]`). Phases only move forward,
 * in recipe order: a line matching an earlier phase (make's "Entering directory" of an earlier tree, a later
 * mention of an earlier file) never sends the progress display back.
 */
export class PhaseTracker {
  private readonly patterns: { re: RegExp; phase: string }[];
  private index = -1;
  /** Phases entered so far, in order. */
  readonly reached: string[] = [];

  constructor(
    phases: readonly { match: string; phase: string }[],
    private readonly onPhase?: (phase: string, index: number, total: number) => void,
  ) {
    this.patterns = phases.map((p) => ({ re: new RegExp(p.match), phase: p.phase }));
  }

  /** The current phase, if any. */
  get current(): string | undefined {
    return this.patterns[this.index]?.phase;
  }

  /** Feeds one log line; returns the phase entered, if the line starts one. */
  line(line: string): string | undefined {
    for (let j = this.index + 1; j < this.patterns.length; j++) {
      const p = this.patterns[j];
      if (p?.re.test(line)) {
        this.index = j;
        this.reached.push(p.phase);
        this.onPhase?.(p.phase, j, this.patterns.length);
        return p.phase;
      }
    }
    return undefined;
  }
}

/**
 * The recipe hint for a failure: the lines are searched from the last one up (the error is usually at the end,
 * after unrelated warnings), and on each line the hints in recipe order.
 */
export function matchHint(
  hints: readonly { match: string; hint: string }[],
  lines: readonly string[],
): string | undefined {
  const compiled = hints.map((h) => ({ re: new RegExp(h.match), hint: h.hint }));
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] ?? '';
    const found = compiled.find((h) => h.re.test(line));
    if (found) return found.hint;
  }
  return undefined;
}
