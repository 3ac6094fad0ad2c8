import { machine } from 'node:os';
import { CommandError, capture } from '@nabla-build/exec';
import { BuildError, type HostFacts } from '@nabla-build/model';
import { canonicalRootSupport } from './canonical-root.js';

let cached: Promise<HostFacts> | undefined;

/**
 * Facts about the build host that change native outputs (they are part of toolchain and package keys):
 * the machine (`uname -m`, e.g. `x86_64`), the first line of `cc --version`, and whether native builds run in
 * the canonical build root. Computed once per process.
 */
export function hostFacts(): Promise<HostFacts> {
  cached ??= probe().catch((err) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

async function probe(): Promise<HostFacts> {
  // The two probes run at once (each is a process or two; a plan waits for both).
  const support = canonicalRootSupport();
  let out: string;
  try {
    out = await capture('cc', ['--version'], { cwd: process.cwd(), env: { LC_ALL: 'C' } });
  } catch (err) {
    if (err instanceof CommandError) {
      throw new BuildError(
        'host.no-cc',
        `cannot identify the host C compiler: \`cc --version\` failed (${err.message})`,
        {
          hint: 'install gcc (apt-get install gcc libc6-dev), then `nabla-build doctor`',
          cause: err,
        },
      );
    }
    throw err;
  }
  const root = await support;
  return { arch: machine(), cc: out.split('\n')[0]?.trim() ?? '', buildRoot: root === 'none' ? 'host' : 'canonical' };
}
