import { run } from '@nabla-build/exec';

/** Newest committer time (seconds since the epoch) of the given git working trees. */
export async function commitEpoch(trees: string[]): Promise<number> {
  let newest = 0;
  for (const t of trees) {
    const r = await run('git', ['-C', t, 'show', '-s', '--format=%ct', 'HEAD'], { cwd: t });
    newest = Math.max(newest, Number(r.stdout.trim()) || 0);
  }
  return newest;
}
