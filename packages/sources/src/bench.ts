import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dirSize } from '@nabla-build/fsio';
import { fetchGit } from './fetch-git.js';
import { git } from './git.js';
import { resolveRef } from './lock.js';

export interface FetchMeasurement {
  /** Size of the git objects written to disk (pack files), in bytes. */
  bytes: number;
  ms: number;
}

export interface FirstFetchMeasurement {
  url: string;
  rev: string;
  /** fetchGit of the pinned commit into an empty cache (depth 1, plus the connectivity check). */
  ours: FetchMeasurement;
  /** `git clone --no-checkout --no-local` of the same repository (all branches, full history). */
  clone: FetchMeasurement;
  /** ours.bytes / clone.bytes. */
  ratio: number;
}

export interface MeasureOptions {
  /** Commit to pin; default: the remote's HEAD. */
  rev?: string;
  /** Cone paths: measure a sparse (partial-clone) fetch. */
  sparse?: string[];
  /** Scratch directory (default: a new temp dir, removed afterwards). */
  workDir?: string;
}

/** Benchmark helper (`npm run bench`): bytes and time of our first fetch of a pinned commit vs a plain git clone. */
export async function measureFirstFetch(repoUrl: string, opts: MeasureOptions = {}): Promise<FirstFetchMeasurement> {
  const work = opts.workDir ?? (await mkdtemp(join(tmpdir(), 'nabla-bench-')));
  try {
    const ctx = { cacheDir: join(work, 'cache'), allowLocal: true };
    const rev = opts.rev ?? (await resolveRef('bench', repoUrl, 'HEAD', ctx));
    let t = Date.now();
    const r = await fetchGit(
      {
        kind: 'git',
        name: 'bench',
        git: repoUrl,
        rev,
        submodules: [],
        ...(opts.sparse ? { sparse: opts.sparse } : {}),
      },
      ctx,
    );
    const ours = { bytes: r.bytesFetched, ms: Date.now() - t };
    t = Date.now();
    await git(work, ['clone', '-q', '--no-checkout', '--no-local', repoUrl, join(work, 'clone')]);
    const clone = { bytes: await dirSize(join(work, 'clone', '.git', 'objects')), ms: Date.now() - t };
    return { url: repoUrl, rev, ours, clone, ratio: clone.bytes > 0 ? ours.bytes / clone.bytes : Number.NaN };
  } finally {
    if (!opts.workDir) await rm(work, { recursive: true, force: true });
  }
}
