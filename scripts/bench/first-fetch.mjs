// The first-fetch figure (`npm run bench`): bytes and time of our first fetch of a pinned commit vs a plain
// `git clone` of the same repository. Moved here from @nabla-build/sources (benchmark helpers are not product code).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirSize } from '@nabla-build/fsio';
import { fetchGit, resolveRef, useGitEnvironment } from '@nabla-build/sources';
import { run } from './lib.mjs';

/**
 * `{ url, rev, ours, clone, ratio }`: ours is fetchGit of the pinned commit into an empty cache (depth 1, plus the
 * connectivity check), clone is `git clone --no-checkout --no-local` (all branches, full history), each
 * `{ bytes, ms }` (bytes: the git objects written to disk); ratio is ours.bytes / clone.bytes.
 * Options: `rev` (default: the remote's HEAD), `sparse` (cone paths: a partial-clone fetch), `workDir` (default: a
 * new temp dir, removed afterwards).
 */
export async function measureFirstFetch(repoUrl, opts = {}) {
  useGitEnvironment(process.env);
  const work = opts.workDir ?? (await mkdtemp(join(tmpdir(), 'nabla-bench-')));
  try {
    const ctx = { cacheDir: join(work, 'cache'), allowLocal: true };
    const rev = opts.rev ?? (await resolveRef('bench', repoUrl, 'HEAD', ctx));
    let t = Date.now();
    const spec = { kind: 'git', name: 'bench', git: repoUrl, rev, submodules: [] };
    const r = await fetchGit(opts.sparse ? { ...spec, sparse: opts.sparse } : spec, ctx);
    const ours = { bytes: r.bytesFetched, ms: Date.now() - t };
    t = Date.now();
    await run('git', ['clone', '-q', '--no-checkout', '--no-local', repoUrl, join(work, 'clone')]);
    const clone = { bytes: await dirSize(join(work, 'clone', '.git', 'objects')), ms: Date.now() - t };
    return { url: repoUrl, rev, ours, clone, ratio: clone.bytes > 0 ? ours.bytes / clone.bytes : Number.NaN };
  } finally {
    if (!opts.workDir) await rm(work, { recursive: true, force: true });
  }
}
