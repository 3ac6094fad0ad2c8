import { CancelledError, InternalError, NablaError } from '@nabla-build/model';

/**
 * The one place errors become output and exit codes: usage 2, build failure 1, internal 70, cancelled 130.
 * User errors print `error: <where>: <what>` plus the hint; no stack trace unless --verbose.
 */
export function reportError(err: unknown, write: (s: string) => void, verbose: boolean): number {
  // Several steps failed in one run (`fetch` tries every source): each is reported, then the count.
  const failures = (err as { failures?: unknown }).failures;
  if (err instanceof NablaError && Array.isArray(failures) && failures.length > 0) {
    let code = 1;
    for (const f of failures as { error: unknown }[]) code = Math.max(code, reportError(f.error, write, verbose));
    write(`error: ${err.message}\n`);
    return code;
  }
  if (err instanceof NablaError && !(err instanceof InternalError)) {
    // A build failure's `where` is left out when its message already says it (a URL or path it names); bad input
    // always keeps `file:line: ` in front.
    const said = err.exitCode === 1 && err.where !== undefined && err.message.includes(err.where);
    const where = err.where && !said ? `${err.where}: ` : '';
    write(`error: ${where}${err.message}\n`);
    // A CommandError (from exec) carries the output tail; matched by shape so this module stays light.
    const tail = (err as { tail?: unknown }).tail;
    if (Array.isArray(tail) && tail.length) {
      write(
        `  last lines of output:\n${(tail as string[])
          .slice(-15)
          .map((l) => `    ${l}`)
          .join('\n')}\n`,
      );
    }
    if (err.logPath) write(`  full log: ${err.logPath}\n`);
    if (err.hint) write(`  hint: ${err.hint}\n`);
    if (verbose && err.stack) write(`${err.stack}\n`);
    return err.exitCode;
  }
  if (err instanceof CancelledError) {
    write('cancelled\n');
    return 130;
  }
  const e = err instanceof Error ? err : new Error(String(err));
  write(`internal error: ${e.message}\n${e.stack ?? ''}\n`);
  write('  this is a bug in nabla-build; please report it with the output above and `nabla-build --version`\n');
  return 70;
}
