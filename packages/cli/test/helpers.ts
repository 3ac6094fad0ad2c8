import { join } from 'node:path';
import { execa } from 'execa';

export const repoRoot = join(import.meta.dirname, '..', '..', '..');
const bin = join(repoRoot, 'packages', 'cli', 'bin', 'nabla-build.js');

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI as a user would (built by `npm test`'s pretest), never throwing on failure. */
export async function cli(
  args: string[],
  opts: { env?: Record<string, string | undefined>; cwd?: string; timeout?: number } = {},
): Promise<CliResult> {
  const r = await execa(process.execPath, [bin, ...args], {
    cwd: opts.cwd ?? repoRoot,
    env: { CI: 'true', NABLA_BUILD_CONFIG: '/nonexistent/nabla-build-config.yaml', ...opts.env },
    reject: false,
    timeout: opts.timeout ?? 600_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
