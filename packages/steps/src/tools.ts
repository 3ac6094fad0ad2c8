import { join } from 'node:path';
import type { CompletedStep } from '@nabla-build/engine';
import { UsageError } from '@nabla-build/model';
import { completedOf } from './source-context.js';

/** The tender and solo5-elftool a finished toolchain step provides (its recipe's `provides`), as host paths. */
export function toolchainTools(done: CompletedStep | undefined): { tender: string; elftool?: string } {
  const step = completedOf(done, 'toolchain');
  const p = step.result.provides ?? {};
  if (!p.tender)
    throw new UsageError('run.no-tender', `toolchain ${step.step.subject} provides no spt tender`, {
      hint: `add \`provides: { tender: <path in its tree> }\` to the toolchain's recipe`,
    });
  return { tender: join(step.dir, p.tender), ...(p.elftool ? { elftool: join(step.dir, p.elftool) } : {}) };
}
