/**
 * Error classes shared by every package. One top-level handler (in the CLI) turns them into a message and an
 * exit code, so every layer throws one of these with: what failed, where (file, field, patch, hunk, URL...),
 * and a hint — the next command the user should run.
 */

export interface ErrorDetails {
  /** Where the problem is: `recipes/python3.yaml:12`, `patches/solo5/0001-x.patch hunk #2`, a URL, a path. */
  where?: string;
  /** The next command (or action) that fixes it. */
  hint?: string;
  /** Path of a log file with the full output, when there is one. */
  logPath?: string;
  cause?: unknown;
}

/** Base class: a failure the user can act on. Never printed with a stack trace. */
export class NablaError extends Error {
  /** Stable machine-readable code, e.g. `recipe.invalid`, `source.offline`, `patch.conflict`. */
  readonly code: string;
  readonly where?: string;
  readonly hint?: string;
  readonly logPath?: string;
  /** Process exit code the CLI uses for this class of error. */
  get exitCode(): number {
    return 1;
  }

  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.code = code;
    if (details.where !== undefined) this.where = details.where;
    if (details.hint !== undefined) this.hint = details.hint;
    if (details.logPath !== undefined) this.logPath = details.logPath;
  }
}

/** Bad input: CLI arguments, recipes, lockfile, config, image references, patch files. Exit code 2. */
export class UsageError extends NablaError {
  override get exitCode(): number {
    return 2;
  }
}

/** A malformed recipe, lockfile or config file: always names file, line and field. Exit code 2. */
export class InputFileError extends UsageError {
  readonly file: string;
  readonly line?: number;
  readonly field?: string;
  constructor(file: string, line: number | undefined, field: string | undefined, problem: string, hint?: string) {
    const where = line === undefined ? file : `${file}:${line}`;
    super('input.invalid', field ? `${field}: ${problem}` : problem, { where, ...(hint ? { hint } : {}) });
    this.file = file;
    if (line !== undefined) this.line = line;
    if (field !== undefined) this.field = field;
  }
}

/** Something in the build failed: fetch, patch, compile, image, push. Exit code 1. */
export class BuildError extends NablaError {}

/** The user or a signal stopped the build. Exit code 130. */
export class CancelledError extends NablaError {
  override get exitCode(): number {
    return 130;
  }
  constructor(message = 'cancelled', details: ErrorDetails = {}) {
    super('cancelled', message, details);
  }
}

/** A bug in nabla-build itself. Exit code 70 (EX_SOFTWARE); printed with its stack. */
export class InternalError extends NablaError {
  override get exitCode(): number {
    return 70;
  }
}

/** Wraps an error with the subject that failed (`building solo5 at b326416: …`), keeping class and hint. */
export function withContext(err: unknown, subject: string): unknown {
  if (err instanceof NablaError) err.message = `${subject}: ${err.message}`;
  return err;
}
