// Checkout and patch at real size ("no tree copied when a link or a view will do"): a generated repository of
// ≥ 200 MB in ≥ 20,000 files with a submodule (scripts/bench/big-repo.mjs), fetched, checked out and patched
// by nabla-build as a toolchain's tree. Bytes written are GNU time's file-system outputs (%O, 512-byte units:
// the kernel's write_bytes of the command and every process it starts, counted per page dirtied).
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateBigRepo } from './big-repo.mjs';
import { fmtBytes, ratio, run, treeBytes } from './lib.mjs';

const stepChild = join(dirname(fileURLToPath(import.meta.url)), 'step-child.mjs');

/**
 * Fetch, checkout + patch (the patch step alone, run as `nabla-build` runs it: scripts/bench/step-child.mjs),
 * the toolchain step after it, `cp -a` of the patched tree (writing it once: the floor) and a failed patch
 * attempt, whose leftovers are checked. The generated repository lives in `work` and is removed afterwards.
 */
export async function bigCheckoutBench({ cliBin, env, work, record }) {
  const dir = join(work, 'big-repo');
  const t0 = Date.now();
  const big = generateBigRepo(dir);
  console.error(`bigCheckout: generated the repository in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  const cache = join(dir, 'cache');
  const flags = (c = cache) => ['--recipes', big.recipes, '--config', big.configFile, '--cache-dir', c];
  /** Bytes written by a command and its children; a failure is returned, not thrown, when `mayFail`. */
  const written = async (cmd, args, mayFail = false) => {
    const out = join(dir, 'time-out');
    const ok = await run('/usr/bin/time', ['-f', '%O', '-o', out, cmd, ...args], { env }).then(
      () => true,
      (err) => {
        if (!mayFail) throw err;
        return false;
      },
    );
    return { ok, bytes: Number(readFileSync(out, 'utf8').trim().split('\n').pop()) * 512 };
  };
  const node = (args, mayFail) => written(process.execPath, args, mayFail);
  try {
    await run(process.execPath, [cliBin, 'lock', ...flags(join(dir, 'cache-lock'))], { env });
    rmSync(join(dir, 'cache-lock'), { recursive: true, force: true });
    const fetch = await node([cliBin, 'fetch', big.target, ...flags()]);
    const mirrors = treeBytes(join(cache, 'git'));
    const patch = await node([stepChild, 'patch:big', big.target, ...flags()]);
    const entries = readdirSync(join(cache, 'steps', 'patch'));
    const tree = treeBytes(join(cache, 'steps', 'patch', entries[0], 'tree'));
    // Writing the same tree once, as plainly as it gets.
    const floor = await written('cp', ['-a', join(cache, 'steps', 'patch', entries[0], 'tree'), join(dir, 'floor')]);
    rmSync(join(dir, 'floor'), { recursive: true, force: true });
    const toolchain = await node([cliBin, big.target, '--no-load', ...flags()]);
    const info = `${tree.files.toLocaleString('en')} files, ${fmtBytes(tree.apparent)} (${fmtBytes(tree.disk)} on disk, .git included), 3 commits, 1 submodule, 2 project patches`;
    record({
      name: 'checkout + patch of a generated large repository (bytes written)',
      detail: `${info}; ${ratio(patch.bytes, tree.apparent)} the files' bytes (a plain \`cp -a\` of the tree writes ${fmtBytes(floor.bytes)}: every file costs whole 4 KiB pages)`,
      ours: fmtBytes(patch.bytes),
      baseline: `tree ${fmtBytes(tree.disk)} on disk`,
      ratio: ratio(patch.bytes, tree.disk),
      target: '≤ 1.1×',
      met: patch.bytes / tree.disk <= 1.1,
    });
    record({
      name: 'fetch of the generated large repository (bytes written)',
      detail: `into the cache's mirrors (${fmtBytes(mirrors.disk)} on disk afterwards)`,
      ours: fmtBytes(fetch.bytes),
      baseline: `mirrors ${fmtBytes(mirrors.disk)}`,
      ratio: ratio(fetch.bytes, mirrors.disk),
      target: '(for reference)',
      met: true,
    });
    record({
      name: 'toolchain step over the patched large tree (bytes written)',
      detail:
        'the build tree is a copy of the patched tree (`cp -a`, no reflink on ext4; hard links would let the build write into the cache entry)',
      ours: fmtBytes(toolchain.bytes),
      baseline: `tree ${fmtBytes(tree.disk)} on disk`,
      ratio: ratio(toolchain.bytes, tree.disk),
      target: '(for reference)',
      met: true,
    });
    // A failed attempt: a third patch that conflicts. Only its log may stay.
    writeFileSync(
      join(big.patches, '0003-conflict.patch'),
      'Conflicts on purpose.\n\nWhy: the failed-attempt figure of the benchmark.\n\n--- a/README\n+++ b/README\n@@ -1,2 +1,2 @@\n not in the file\n-nor this\n+changed\n',
    );
    await run(process.execPath, [cliBin, 'lock', ...flags(join(dir, 'cache-lock'))], { env });
    const failed = await node([stepChild, 'patch:big', big.target, ...flags()], true);
    const left = readdirSync(join(cache, 'steps', 'patch')).filter((e) => !entries.includes(e));
    const temps = existsSync(join(cache, 'tmp')) ? readdirSync(join(cache, 'tmp')) : [];
    const logs = readdirSync(join(cache, 'logs')).filter((l) => l.startsWith('patch-'));
    const clean = !failed.ok && left.length === 0 && temps.length === 0 && logs.length === 2;
    record({
      name: 'a failed patch attempt on the large tree leaves only its log',
      detail: `the checkout (${fmtBytes(failed.bytes)} written) is removed when 0003 conflicts; left: ${[...left, ...temps].join(', ') || 'no step directory, no temporary'}; logs: ${logs.length}`,
      ours: left.length + temps.length === 0 ? 'nothing but the log' : `${left.length + temps.length} leftovers`,
      baseline: 'n/a',
      ratio: 'n/a',
      target: 'only the log',
      met: clean,
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
