import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';
import { isCI } from './services.js';

export const execFileP = promisify(execFile);

/*
 * Scratch space and tool checks for test files only (`@nabla-build/testing/scratch`): importing this module
 * registers a vitest hook, so it is not part of the package's main entry (the bench imports that one).
 */

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A fresh temporary directory, removed after the tests of the file that made it. */
export async function tempDir(prefix = 'nabla-test-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

/** Whether an external tool runs. Under CI a missing tool throws (the test fails); locally the caller skips. */
export async function haveTool(cmd: string, args: string[] = ['--version']): Promise<boolean> {
  try {
    await execFileP(cmd, args);
    return true;
  } catch {
    if (isCI()) throw new Error(`${cmd} is required under CI but is not usable`);
    return false;
  }
}

/** The pid of a process that has exited (for fake leftovers of an interrupted run). */
export function deadPid(): number {
  return Number(execFileSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).trim());
}
