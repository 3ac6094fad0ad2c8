import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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
    // No user config: the default location is somewhere that does not exist (a named one must exist).
    // The fixture upstreams' test knobs (NABLA_FIXTURE_*) reach native builds only when passed explicitly.
    env: {
      CI: 'true',
      XDG_CONFIG_HOME: '/nonexistent/nabla-build-test-config',
      NABLA_BUILD_PASS_ENV: 'NABLA_FIXTURE_*',
      ...opts.env,
    },
    reject: false,
    timeout: opts.timeout ?? 600_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/** A directory with `nabla-build` on it, as an installed CLI would be. */
export function binDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nb-bin-'));
  const shim = join(d, 'nabla-build');
  writeFileSync(shim, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} "$@"\n`);
  chmodSync(shim, 0o755);
  return d;
}
