import { writeFileSync } from 'node:fs';
import { BuildError } from '@nabla-build/model';
import { describe, expect, it } from 'vitest';
import { reportError } from '../src/errors.js';
import { environmentError } from '../src/main.js';

/** A full disk, a read-only file system, missing permissions: the host's state, reported as such (exit 1). */
describe('host errors are not bugs', () => {
  it('a real ENOSPC (writing to /dev/full) is a located build failure with a fix, not an internal error', () => {
    let raw: unknown;
    try {
      writeFileSync('/dev/full', 'x'.repeat(4096));
    } catch (e) {
      raw = e;
    }
    expect((raw as NodeJS.ErrnoException).code).toBe('ENOSPC');
    const err = environmentError(new Error('writing a layer failed', { cause: raw }));
    expect(err).toBeInstanceOf(BuildError);
    const lines: string[] = [];
    const code = reportError(err, (s) => lines.push(s), false);
    expect(code).toBe(1);
    const text = lines.join('');
    // A write on a descriptor carries no path; the syscall is named.
    expect(text).toMatch(/^error: no space left on the device \(write\)\n/);
    expect(text).toContain('hint: free some space (`nabla-build clean` drops built steps)');
    expect(text).not.toMatch(/internal error|this is a bug/);
  });

  it('other errors are left alone (a real bug stays an internal error)', () => {
    const bug = new TypeError('undefined is not a function');
    expect(environmentError(bug)).toBe(bug);
  });
});
