import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';

export const execFileP = promisify(execFile);

const dirs: string[] = [];

/** A fresh temp directory, removed after the file's tests. */
export async function tempDir(prefix = 'nabla-image-'): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

afterAll(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/**
 * Whether an external tool is usable. Under CI=true a missing tool is a failure (the caller's test throws);
 * locally the test is skipped with the reason.
 */
export async function haveTool(cmd: string, args: string[] = ['--version']): Promise<boolean> {
  try {
    await execFileP(cmd, args);
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error(`${cmd} is required under CI but is not usable`);
    return false;
  }
}

/** Deterministic pseudo-random bytes (xorshift), partly compressible like a real binary. */
export function pseudoRandomBytes(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = seed | 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    // Every other 64-byte run is low-entropy text, so gzip has something to do.
    const v = (i >> 6) & 1 ? 0x61 + ((x >>> 0) % 8) : x >>> 0;
    if ((i >> 6) & 1) buf.fill(v, i, Math.min(i + 4, size));
    else buf.writeUInt32LE(v >>> 0, i + 4 <= size ? i : size - 4);
  }
  return buf;
}
