import { UsageError } from '@nabla-build/model';

/**
 * Value checks shared by the options of every command: what a flag takes is validated where it is parsed, so
 * a typo never reaches a build as a silent default.
 */

/** A repeatable string option: yargs gives one value, or an array when it is repeated (never swallowing targets). */
export function repeatable(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** The value as typed after a flag (for messages: yargs turns `abc` into NaN), given next or with `=`. */
export function rawValue(argv: readonly string[], ...flags: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    for (const f of flags) {
      if (a === f) return argv[i + 1];
      if (a.startsWith(`${f}=`)) return a.slice(f.length + 1);
    }
  }
  return undefined;
}

/** More parallel steps than this is a typo, not a machine: each one is a process tree. */
export const MAX_JOBS = 1024;

/** Guest memory of `run`/`test`, in MiB: runnc's minimum, and a bound no host has. */
export const MIN_MEM_MB = 512;
export const MAX_MEM_MB = 1 << 20;

/** `--mem`: an integer number of MiB in range. */
export function checkMem(value: unknown, raw: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = value as number;
  if (!Number.isInteger(n) || n < MIN_MEM_MB || n > MAX_MEM_MB)
    throw new UsageError(
      'usage',
      `--mem ${raw ?? String(value)}: expected a whole number of MiB from ${MIN_MEM_MB} to ${MAX_MEM_MB}`,
      {
        where: '--mem',
        hint: '--mem 512',
      },
    );
  return n;
}

/** SOURCE_DATE_EPOCH, when set: whole seconds since 1970, as reproducible-builds.org specifies. */
export function checkSourceDateEpoch(env: NodeJS.ProcessEnv): void {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined) return;
  if (!/^\d{1,11}$/.test(v))
    throw new UsageError('env.invalid', `SOURCE_DATE_EPOCH=${JSON.stringify(v)} is not a whole number of seconds`, {
      where: 'SOURCE_DATE_EPOCH',
      hint: 'export SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)  (or unset it)',
    });
}
