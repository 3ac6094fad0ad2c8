import { run } from '@nabla-build/exec';

/**
 * Copies a prepared source tree into a step's work directory. `cp -a` keeps modes, symlinks and the git
 * metadata the upstream build scripts read; `--reflink=auto` makes it nearly free on CoW file systems.
 */
export async function copyTree(from: string, to: string, signal: AbortSignal, logFile: string): Promise<void> {
  await run('cp', ['-a', '--reflink=auto', '--', from, to], { cwd: '/', signal, logFile });
}
