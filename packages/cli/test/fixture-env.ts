import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createFixtureUpstreams, type FixtureUpstreams } from '@nabla-build/testing';
import { afterAll, beforeAll } from 'vitest';
import { type CliResult, cli, repoRoot } from './helpers.js';

/** Fixture upstreams plus a CLI runner pointed at them (through the user config, like a user would). */
export interface FixtureWorld {
  upstreams: FixtureUpstreams;
  /** A fresh, empty cache directory. */
  newCache(): string;
  /** Runs nabla-build with the fixture config; `trace` collects every command nabla-build spawned. */
  run(
    args: string[],
    opts?: { cache?: string; env?: Record<string, string | undefined>; trace?: string },
  ): Promise<CliResult>;
  /** Commands recorded in a trace file, one JSON object per line. */
  traced(trace: string): { command: string; args: string[] }[];
}

/** The test file's fixture world: created before its tests, its server closed after them. */
export function useFixtureWorld(): FixtureWorld {
  let w: FixtureWorld | undefined;
  beforeAll(async () => {
    w = await fixtureWorld();
  });
  afterAll(async () => {
    await w?.upstreams.close();
  });
  const get = (): FixtureWorld => {
    if (!w) throw new Error('the fixture world exists only while the tests of its file run');
    return w;
  };
  return {
    get upstreams() {
      return get().upstreams;
    },
    newCache: () => get().newCache(),
    run: (args, opts) => get().run(args, opts),
    traced: (trace) => get().traced(trace),
  };
}

export async function fixtureWorld(): Promise<FixtureWorld> {
  const root = mkdtempSync(join(tmpdir(), 'nb-e2e-'));
  const upstreams = await createFixtureUpstreams(join(root, 'upstreams'));
  let n = 0;
  return {
    upstreams,
    newCache: () => join(root, `cache-${n++}`),
    run: (args, opts = {}) =>
      cli(opts.cache ? ['--cache-dir', opts.cache, ...args] : args, {
        env: {
          NABLA_BUILD_CONFIG: upstreams.configFile,
          ...(opts.trace ? { NABLA_BUILD_TRACE_EXEC: opts.trace } : {}),
          ...opts.env,
        },
      }),
    traced: (trace) => {
      let text = '';
      try {
        text = readFileSync(trace, 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { command: string; args: string[] });
    },
  };
}

/** A fresh, empty trace file (for NABLA_BUILD_TRACE_EXEC / NABLA_FIXTURE_*_TRACE). */
export function newTrace(): string {
  const p = join(mkdtempSync(join(tmpdir(), 'nb-trace-')), 'trace');
  writeFileSync(p, '');
  return p;
}

/** Image step directory → the manifest digest its entry records. */
export function imageDigests(cache: string): Record<string, string> {
  const dir = join(cache, 'steps', 'image');
  const out: Record<string, string> = {};
  for (const d of readdirSync(dir)) {
    const m = JSON.parse(readFileSync(join(dir, d, 'entry.json'), 'utf8')) as { result: { manifestDigest: string } };
    out[d] = m.result.manifestDigest;
  }
  return out;
}

/** Replaces `from` in a file; a test setup whose `from` is not there fails instead of testing nothing. */
export function editFile(file: string, from: string | RegExp, to: string): void {
  const text = readFileSync(file, 'utf8');
  const next = text.replace(from, to);
  if (next === text) throw new Error(`test setup: ${String(from)} not found in ${file}`);
  writeFileSync(file, next);
}

/** A copy of recipes/ and patches/ for a test to edit (the shipped ones stay untouched), in `root`. */
export function projectCopy(root = mkdtempSync(join(tmpdir(), 'nb-project-'))): {
  root: string;
  recipes: string;
  patches: string;
} {
  cpSync(join(repoRoot, 'recipes'), join(root, 'recipes'), { recursive: true });
  cpSync(join(repoRoot, 'patches'), join(root, 'patches'), { recursive: true });
  return { root, recipes: join(root, 'recipes'), patches: join(root, 'patches') };
}
