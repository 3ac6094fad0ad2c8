// The shared step cache (docs/remote-cache.md) on the fixture upstreams: `world` on an empty cache built
// from scratch vs pulled from the test registry, bytes downloaded vs the entries' size, and a re-push of an
// unchanged cache. A section of `npm run bench` (run.mjs); also runs alone:
//   node scripts/bench/remote-cache.mjs      (prints the figures as a Markdown table)
import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmtBytes, fmtMs, median, ratio, run } from './lib.mjs';

/** Bytes under a directory (symlinks as themselves). */
function du(p) {
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (!st) return 0;
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((a, e) => a + du(join(p, e)), 0);
}

/**
 * `nb(args)` runs the CLI with the fixture config and resolves with its stdout; `record(figure)` collects a
 * row of the report.
 */
export async function remoteCacheBench({ nb, registry, work, record, quick }) {
  const reps = quick ? 2 : 3;
  const ref = `${registry}/bench-${Date.now().toString(36)}/cache`;
  const json = (stdout) => JSON.parse(stdout);
  const filled = join(work, 'rc-filled');
  // Fill: build world once and push every step of it (cache push visits all steps, not only the finals).
  await nb(['cache', 'push', ref, 'world', '--cache-dir', filled, '--json']);
  const cold = [];
  const warm = [];
  let last;
  for (let i = -1; i < reps; i++) {
    const a = join(work, `rc-cold-${i}`);
    const b = join(work, `rc-warm-${i}`);
    let t = process.hrtime.bigint();
    await nb(['world', '--no-load', '--cache-dir', a]);
    const c = Number(process.hrtime.bigint() - t) / 1e6;
    t = process.hrtime.bigint();
    const r = await nb(['world', '--no-load', '--json', '--cache-dir', b, '--cache-from', ref]);
    const w = Number(process.hrtime.bigint() - t) / 1e6;
    last = { json: json(r), cache: b };
    rmSync(a, { recursive: true, force: true });
    if (i < 0) continue; // first round unmeasured
    cold.push(c);
    warm.push(w);
  }
  const c = median(cold);
  const w = median(warm);
  record({
    name: '`world` pulled from a registry vs built, empty cache',
    detail: `fixture upstreams; ${last.json.remoteCache.hits.length} entries pulled (the final images only)`,
    ours: fmtMs(w),
    baseline: `built ${fmtMs(c)}`,
    ratio: ratio(w, c),
    target: '≤ 0.2×',
    met: w / c <= 0.2,
  });
  const downloaded = last.json.remoteCache.bytesDownloaded;
  const entries = du(join(last.cache, 'steps'));
  record({
    name: 'bytes downloaded vs size of the entries installed',
    detail: 'gzip chunks vs files on disk',
    ours: fmtBytes(downloaded),
    baseline: `entries ${fmtBytes(entries)}`,
    ratio: ratio(downloaded, entries),
    target: '≤ 1×',
    met: downloaded <= entries,
  });
  const again = json(await nb(['cache', 'push', ref, 'world', '--cache-dir', filled, '--json']));
  const bytes = again.pushed.reduce((a, p) => a + p.bytesUploaded, 0);
  const first = json(await nb(['cache', 'push', `${ref}-2`, 'world', '--cache-dir', filled, '--json']));
  const firstBytes = first.pushed.reduce((a, p) => a + p.bytesUploaded, 0);
  record({
    name: 're-push of an unchanged step cache',
    detail: `every step of world; a first push to an empty repository uploads ${fmtBytes(firstBytes)}`,
    ours: `${fmtBytes(bytes)}`,
    baseline: `first ${fmtBytes(firstBytes)}`,
    ratio: ratio(bytes, firstBytes),
    target: '0 blob bytes',
    met: bytes === 0,
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { createFixtureUpstreams, startServicesDetailed } = await import('@nabla-build/testing');
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const cliBin = join(repo, 'packages', 'cli', 'bin', 'nabla-build.js');
  const work = mkdtempSync(join(tmpdir(), 'nb-bench-rc-'));
  const { services } = await startServicesDetailed();
  const fx = await createFixtureUpstreams(join(work, 'upstreams'));
  const env = { ...process.env, CI: 'true', NABLA_BUILD_CONFIG: fx.configFile };
  const rows = [];
  try {
    await remoteCacheBench({
      nb: (args) => run(process.execPath, [cliBin, ...args], { env }),
      registry: services.registry,
      work,
      quick: process.env.NABLA_BENCH_QUICK === '1',
      record: (r) => {
        rows.push(r);
        console.error(`${r.name}: ${r.ours} vs ${r.baseline} → ${r.ratio}`);
      },
    });
  } finally {
    await fx.close();
    rmSync(work, { recursive: true, force: true });
  }
  console.log('| figure | nabla-build | baseline | ratio | target | |\n|---|---|---|---|---|---|');
  for (const r of rows)
    console.log(
      `| ${r.name} (${r.detail}) | ${r.ours} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.met ? 'met' : 'missed'} |`,
    );
}
