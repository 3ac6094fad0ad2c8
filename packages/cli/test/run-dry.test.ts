import { existsSync } from 'node:fs';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { useFixtureWorld } from './fixture-env.js';

const world = useFixtureWorld();

describe('run --dry-run', () => {
  it('prints a command that works: its files are kept, and stderr says where', async () => {
    const cache = world.newCache();
    const r = await world.run(['run', 'hello', '--dry-run'], { cache });
    expect(r.exitCode, r.stderr).toBe(0);
    const line = r.stdout.trim().split('\n').pop() as string;
    const kept =
      /the files this command uses are kept in (\S+) \(remove them with `rm -r \S+` or `nabla-build clean`\)/.exec(
        r.stderr,
      )?.[1];
    expect(kept, r.stderr).toBeDefined();
    expect(kept?.startsWith(`${cache}/tmp/run-`)).toBe(true);
    // Every file the command names exists after nabla-build has exited.
    const paths = [...line.matchAll(/(?:^|[\s=])(\/[^\s"']+)/g)].map((m) => m[1] as string);
    expect(paths.length).toBeGreaterThanOrEqual(3);
    for (const p of paths) expect(existsSync(p), `${p} in ${line}`).toBe(true);
    // And the command runs as printed, after the network setup stderr gives (hello declares a net device).
    const setup = /^ {2}(ip netns add (nb-dry\w+) && .*)$/m.exec(r.stderr);
    expect(setup, r.stderr).not.toBeNull();
    const netns = setup?.[2] as string;
    expect(line).toMatch(new RegExp(`ip netns exec '?${netns}'? `));
    expect(r.stderr).toContain(`and remove them afterwards: ip netns del ${netns}`);
    await execa('sh', ['-c', setup?.[1] as string]);
    const run = await execa('sh', ['-c', line], { reject: false, timeout: 60_000 }).finally(() =>
      execa('ip', ['netns', 'del', netns], { reject: false }),
    );
    expect(run.exitCode, run.stdout + run.stderr).toBe(0);
    expect(run.stdout + run.stderr).toContain('I beheld the wretch');
    // clean removes what the dry run kept.
    expect((await world.run(['clean'], { cache })).exitCode).toBe(0);
    expect(existsSync(kept as string)).toBe(false);
  }, 300_000);
});
