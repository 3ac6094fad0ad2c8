import { execFile } from 'node:child_process';
import { CommandError } from './command-error.js';
import { childEnv, type RunOptions, traceSpawn } from './run.js';

/**
 * Runs a short probe (`cc --version`, the canonical-root check) and returns its stdout. Unlike run(), no log,
 * no cancellation, no process group: the probes of a plan finish in milliseconds. It uses node:child_process
 * rather than execa because importing execa costs ~0.1–0.2 s, more than the rest of `nabla-build plan`.
 */
export function capture(
  command: string,
  args: string[],
  opts: Pick<RunOptions, 'cwd' | 'env' | 'cleanEnv'>,
): Promise<string> {
  traceSpawn(command, args, opts.cwd);
  const started = Date.now();
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: opts.cwd, env: childEnv(opts), encoding: 'utf8' }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const code = (err as { code?: unknown }).code;
      reject(
        new CommandError({
          command,
          args,
          cwd: opts.cwd,
          ...(typeof code === 'number' ? { exitCode: code } : {}),
          ...(err.signal ? { signal: err.signal } : {}),
          durationMs: Date.now() - started,
          tail: `${stdout}${stderr}`.split('\n').filter(Boolean).slice(-30),
          ...(code === 'ENOENT' ? { hint: `install \`${command}\` (see \`nabla-build doctor\`)` } : {}),
        }),
      );
    });
  });
}
