import { describe, expect, it } from 'vitest';
import { asksForHelp } from '../src/yargs.js';

describe('asksForHelp', () => {
  it('sees every way yargs reads a help request', () => {
    for (const argv of [['--help'], ['-h'], ['help'], ['plan', '-vh'], ['--help=true'], ['-hq'], ['x', '--help']])
      expect(asksForHelp(argv), argv.join(' ')).toBe(true);
  });

  it('is false for other command lines and after --', () => {
    for (const argv of [
      [],
      ['plan', 'python3'],
      ['--hostname'],
      ['-j', '2'],
      ['run', 'hello', '--', '-h'],
      ['helpful'],
    ])
      expect(asksForHelp(argv), argv.join(' ')).toBe(false);
  });
});
