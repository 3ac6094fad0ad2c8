import { join } from 'node:path';
import type { CompletedStep } from '@nabla-build/engine';
import { UsageError } from '@nabla-build/model';
import type { ToolchainResult } from './environment.js';

/** The tender and solo5-elftool a finished toolchain step provides (its recipe's `provides`), as host paths. */
export function toolchainTools(step: CompletedStep): { tender: string; elftool?: string } {
  const p = (step.result as ToolchainResult).provides ?? {};
  if (!p.tender)
    throw new UsageError('run.no-tender', `toolchain ${step.step.subject} provides no spt tender`, {
      hint: `add \`provides: { tender: <path in its tree> }\` to the toolchain's recipe`,
    });
  return { tender: join(step.dir, p.tender), ...(p.elftool ? { elftool: join(step.dir, p.elftool) } : {}) };
}
