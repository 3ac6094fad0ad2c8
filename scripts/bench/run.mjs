// npm run bench: every figure measured side by side in one run (medians of several repetitions, and ratios),
// written to docs/benchmarks.md with the machine's description. Not part of `npm test`.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assembleImage } from '@nabla-build/image';
import { pushImage } from '@nabla-build/registry';
import { measureFirstFetch } from '@nabla-build/sources';
import { createFixtureUpstreams, FIXTURE_GIT_ENV, startServicesDetailed, stopServices } from '@nabla-build/testing';
import { fmtBytes, fmtMs, machine, median, ratio, run, sh, timeMedian } from './lib.mjs';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const cliBin = join(repo, 'packages', 'cli', 'bin', 'nabla-build.js');
const work = mkdtempSync(join(tmpdir(), 'nb-bench-'));
const quick = process.env.NABLA_BENCH_QUICK === '1';
const reps = quick ? 3 : 5;
const results = [];
const record = (r) => {
  results.push(r);
  console.error(`${r.name}: ${r.ours} vs ${r.baseline} → ${r.ratio} (target ${r.target}: ${r.met ? 'met' : 'MISSED'})`);
};

const started = await startServicesDetailed();
const services = started.services;
const dockerEnv = { ...process.env, DOCKER_HOST: services.dockerHost, DOCKER_BUILDKIT: '0' };
const fx = await createFixtureUpstreams(join(work, 'upstreams'));
const cliEnv = { ...process.env, CI: 'true', NABLA_BUILD_CONFIG: fx.configFile };
const nb = (args, extraEnv = {}) => run(process.execPath, [cliBin, ...args], { env: { ...cliEnv, ...extraEnv } });

try {
  await imageAssembly();
  await noopWorld();
  await orchestrationOverhead();
  await firstFetch();
  await rePush();
  await parallelWorld();
} finally {
  await fx.close();
  if (started.started.length > 0) await stopServices();
}
writeReport();
rmSync(work, { recursive: true, force: true });

/** mulberry32: deterministic bytes that do not compress (an LCG's low bits would). */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** A python3-sized tree: ≈25 MB in ≈2,000 files (text and incompressible data, like a stdlib plus a binary). */
function generateTree(dir) {
  const rnd = prng(42);
  mkdirSync(dir, { recursive: true });
  let bytes = 0;
  for (let i = 0; i < 2000; i++) {
    const sub = join(dir, `lib/python3.5/pkg${i % 40}`);
    mkdirSync(sub, { recursive: true });
    const size = i === 0 ? 8 * 2 ** 20 : 2000 + (rnd() % 14000);
    const buf = Buffer.alloc(size);
    if (i % 3 === 0 || i === 0) for (let j = 0; j < size; j++) buf[j] = rnd() & 0xff;
    else buf.write(`# module ${i}\n${'def f(x):\n    return x * 2\n'.repeat(size / 30)}`.slice(0, size));
    writeFileSync(join(i === 0 ? dir : sub, i === 0 ? 'python3.nabla' : `m${i}.py`), buf);
    bytes += size;
  }
  return bytes;
}

async function imageAssembly() {
  const tree = join(work, 'tree');
  const bytes = generateTree(tree);
  const config = {
    entrypoint: ['/python3.nabla'],
    cmd: [],
    env: { PYTHONHOME: '/usr/local' },
    labels: {},
    exposedPorts: [],
  };
  const files = [{ hostPath: tree, imagePath: '/' }];
  const ours = await timeMedian(
    () => assembleImage({ files, config, created: new Date(1600000000000) }, join(work, 'img-gzip')),
    { reps },
  );
  const oursNone = await timeMedian(
    () =>
      assembleImage({ files, config, created: new Date(1600000000000), compression: 'none' }, join(work, 'img-none')),
    { reps },
  );
  writeFileSync(join(work, 'Dockerfile'), 'FROM scratch\nCOPY tree/ /\nENTRYPOINT ["/python3.nabla"]\n');
  const docker = await timeMedian(
    () =>
      sh(
        'docker',
        ['build', '-q', '--no-cache', '-t', 'nb-bench-assembly:latest', '-f', join(work, 'Dockerfile'), work],
        { env: dockerEnv },
      ),
    { reps: quick ? 2 : 3 },
  );
  const floor = await timeMedian(() => sh('sh', ['-c', 'tar -C "$1" -cf - . | sha256sum', 'floor', tree]), { reps });
  const info = `${fmtBytes(bytes)} in 2,000 files`;
  record({
    name: 'image assembly vs docker build',
    detail: info,
    ours: fmtMs(ours.median),
    baseline: `docker build ${fmtMs(docker.median)}`,
    ratio: ratio(docker.median, ours.median),
    target: '≥ 3× faster',
    met: docker.median / ours.median >= 3,
  });
  record({
    name: 'image assembly vs tar \\| sha256sum (floor)',
    detail: `${info}; gzip layer (default)`,
    ours: fmtMs(ours.median),
    baseline: `floor ${fmtMs(floor.median)}`,
    ratio: ratio(ours.median, floor.median),
    target: '≤ 2× the floor',
    met: ours.median / floor.median <= 2,
  });
  record({
    name: 'image assembly (uncompressed layer) vs floor',
    detail: `${info}; --compression none`,
    ours: fmtMs(oursNone.median),
    baseline: `floor ${fmtMs(floor.median)}`,
    ratio: ratio(oursNone.median, floor.median),
    target: '≤ 2× the floor',
    met: oursNone.median / floor.median <= 2,
  });
}

async function noopWorld() {
  const cache = join(work, 'cache-noop');
  await nb(['world', '--no-load', '--cache-dir', cache]);
  await nb(['world', '--no-load', '--cache-dir', cache]);
  const time = async (args, env) => {
    const xs = [];
    for (let i = 0; i < (quick ? 5 : 11); i++) {
      const t = process.hrtime.bigint();
      await run(process.execPath, args, { env: { ...cliEnv, ...env } });
      xs.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
    return median(xs);
  };
  const node = await time(['-e', '0']);
  const fast = await time([cliBin, 'world', '--no-load', '--cache-dir', cache]);
  const full = await time([cliBin, 'world', '--no-load', '--cache-dir', cache], { NABLA_BUILD_NO_FAST_PATH: '1' });
  record({
    name: 'no-op `nabla-build world` vs `node -e 0`',
    detail: 'everything cached; answered by the up-to-date check',
    ours: fmtMs(fast),
    baseline: `node ${fmtMs(node)}`,
    ratio: ratio(fast, node),
    target: '≤ 3×',
    met: fast / node <= 3,
  });
  record({
    name: 'no-op world, full CLI (up-to-date check off)',
    detail: 'loads recipes, plans, checks every final entry',
    ours: fmtMs(full),
    baseline: `node ${fmtMs(node)}`,
    ratio: ratio(full, node),
    target: '(for reference)',
    met: true,
  });
}

/** The same fixture scripts nabla-build runs, run by hand: clone, submodules, patches, build.sh, make. */
function directBuild(dir) {
  const git = (cwd, args) =>
    sh('git', ['-c', 'protocol.file.allow=always', ...args], { cwd, env: { ...process.env, ...FIXTURE_GIT_ENV } });
  const r = fx.repos;
  const fl = join(dir, 'frankenlibc');
  git('/', ['clone', '-q', r.frankenlibc.url, fl]);
  git(fl, ['checkout', '-q', r.frankenlibc.rev]);
  git(fl, ['clone', '-q', r.solo5.url, 'solo5']);
  git(fl, ['submodule', 'init']);
  for (const n of ['linux', 'musl', 'llvm', 'solo5']) git(fl, ['config', `submodule.${n}.url`, r[n].url]);
  git(fl, ['submodule', 'update', '-q']);
  for (const p of sh('ls', [join(fl, 'patches', 'solo5')])
    .split('\n')
    .filter(Boolean))
    sh('patch', ['-p1', '-s', '-i', join(fl, 'patches', 'solo5', p)], { cwd: fl });
  for (const p of fx.projectPatches) sh('patch', ['-p1', '-s', '-i', p], { cwd: join(fl, 'solo5') });
  sh('bash', ['build.sh', '-k', 'linux', '-j', '2', 'notests', 'solo5'], { cwd: fl });
  const pk = join(dir, 'rumprun-packages');
  git('/', ['clone', '-q', r['rumprun-packages'].url, pk]);
  git(pk, ['checkout', '-q', r['rumprun-packages'].rev]);
  writeFileSync(join(pk, 'config.mk'), 'RUMPRUN_TOOLCHAIN_TUPLE=x86_64-rumprun-linux\n');
  for (const t of ['python', 'libressl', 'sqlite', 'zlib']) {
    const tb = fx.tarballs[t];
    mkdirSync(join(pk, tb.placeIn), { recursive: true });
    sh('cp', [tb.path, join(pk, tb.placeIn, tb.file)]);
  }
  const env = { ...process.env, PATH: `${join(fl, 'rump', 'bin')}:${process.env.PATH}` };
  for (const args of [
    ['-C', 'libressl'],
    ['-C', 'sqlite'],
    ['-C', 'zlib'],
    ['-C', 'python3', 'build/python'],
  ])
    sh('make', args, { cwd: pk, env });
}

async function orchestrationOverhead() {
  let n = 0;
  const xs = [];
  const ys = [];
  for (let i = 0; i < reps; i++) {
    const dir = join(work, `direct-${n}`);
    let t = process.hrtime.bigint();
    directBuild(dir);
    ys.push(Number(process.hrtime.bigint() - t) / 1e6);
    const cache = join(work, `cache-overhead-${n++}`);
    t = process.hrtime.bigint();
    await nb(['python3', '--no-load', '--cache-dir', cache, '-j', '2']);
    xs.push(Number(process.hrtime.bigint() - t) / 1e6);
    rmSync(dir, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  }
  const ours = median(xs);
  const direct = median(ys);
  record({
    name: 'orchestration overhead (fixture toolchain + python3)',
    detail: 'fresh cache vs the same git/patch/build.sh/make steps by hand',
    ours: fmtMs(ours),
    baseline: `direct ${fmtMs(direct)}`,
    ratio: ratio(ours, direct),
    target: '≤ 1.05×',
    met: ours / direct <= 1.05,
  });
}

/**
 * A repository whose history outweighs its tip, as upstream kernels and llvm-project do: 600 commits, each
 * rewriting one of 40 files of 48 KiB (random, so incompressible). Written with git fast-import.
 */
function deepHistoryRepo(dir) {
  const rnd = prng(7);
  const chunks = [];
  for (let i = 1; i <= 600; i++) {
    const blob = Buffer.alloc(48 * 1024);
    for (let j = 0; j < blob.length; j++) blob[j] = rnd() & 0xff;
    const msg = `commit ${i}`;
    chunks.push(
      Buffer.from(
        `commit refs/heads/main\ncommitter Fixture <fixture@example.org> ${1500000000 + i * 3600} +0000\ndata ${msg.length}\n${msg}\n`,
      ),
    );
    chunks.push(Buffer.from(`M 100644 inline data/file-${i % 40}.bin\ndata ${blob.length}\n`), blob, Buffer.from('\n'));
  }
  sh('git', ['init', '-q', '--bare', '--initial-branch=main', dir]);
  sh('git', ['-C', dir, 'fast-import', '--quiet'], { input: Buffer.concat(chunks) });
  sh('git', ['-C', dir, 'config', 'uploadpack.allowAnySHA1InWant', 'true']);
  sh('git', ['-C', dir, 'config', 'uploadpack.allowFilter', 'true']);
  return `file://${dir}`;
}

async function firstFetch() {
  const deep = deepHistoryRepo(join(work, 'deep.git'));
  const m = await measureFirstFetch(deep, { workDir: join(work, 'fetch-deep') });
  record({
    name: 'first fetch of a deep-history repository',
    detail: `600 commits; ours ${fmtMs(m.ours.ms)}, git clone ${fmtMs(m.clone.ms)}`,
    ours: fmtBytes(m.ours.bytes),
    baseline: `git clone ${fmtBytes(m.clone.bytes)}`,
    ratio: ratio(m.ours.bytes, m.clone.bytes),
    target: '≤ 0.20× the bytes',
    met: m.ours.bytes / m.clone.bytes <= 0.2,
  });
  const llvm = fx.repos.llvm;
  const sparse = await measureFirstFetch(llvm.url, {
    rev: llvm.rev,
    sparse: ['libcxx', 'libcxxabi', 'libunwind', 'llvm/cmake', 'llvm/utils'],
    workDir: join(work, 'fetch-sparse'),
  });
  record({
    name: 'first fetch, sparse (the libc++ paths of an llvm-like tree)',
    detail: `llvm fixture, ${Array.isArray(llvm.commits) ? llvm.commits.length : llvm.commits} commits; ours ${fmtMs(sparse.ours.ms)}, git clone ${fmtMs(sparse.clone.ms)}`,
    ours: fmtBytes(sparse.ours.bytes),
    baseline: `git clone ${fmtBytes(sparse.clone.bytes)}`,
    ratio: ratio(sparse.ours.bytes, sparse.clone.bytes),
    target: '≤ 0.20× the bytes',
    met: sparse.ours.bytes / sparse.clone.bytes <= 0.2,
  });
}

async function rePush() {
  const layout = join(work, 'img-gzip');
  const ref = `${services.registry}/bench/assembly:${Date.now()}`;
  const first = await pushImage(layout, [ref]);
  const second = await pushImage(layout, [ref]);
  record({
    name: 're-push of an unchanged image',
    detail: `first push: ${fmtBytes(first.stats.bytesUploaded)} in ${first.stats.requests} requests`,
    ours: `${fmtBytes(second.stats.bytesUploaded)}, ${second.stats.requests} requests`,
    baseline: `first ${fmtBytes(first.stats.bytesUploaded)}`,
    ratio: ratio(second.stats.bytesUploaded, first.stats.bytesUploaded),
    target: '0 blob bytes',
    met: second.stats.bytesUploaded === 0,
  });
}

async function parallelWorld() {
  const targets = ['python3', 'nginx', 'redis', 'node'];
  const xs = [];
  const ys = [];
  for (let i = 0; i < (quick ? 2 : 3); i++) {
    // The toolchain is shared and built once beforehand: this measures the four package builds.
    const a = join(work, `cache-par-${i}`);
    const b = join(work, `cache-seq-${i}`);
    for (const c of [a, b]) await nb(['hello', '--no-load', '--cache-dir', c]);
    let t = process.hrtime.bigint();
    await nb([...targets, '--no-load', '--jobs', '2', '--cache-dir', a]);
    xs.push(Number(process.hrtime.bigint() - t) / 1e6);
    t = process.hrtime.bigint();
    for (const target of targets) await nb([target, '--no-load', '--jobs', '1', '--cache-dir', b]);
    ys.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const par = median(xs);
  const seq = median(ys);
  record({
    name: '4 packages at --jobs 2 vs one by one',
    detail: 'python3, nginx, redis, node on a built toolchain',
    ours: fmtMs(par),
    baseline: `one by one ${fmtMs(seq)}`,
    ratio: ratio(par, seq),
    target: '≤ 0.65×',
    met: par / seq <= 0.65,
  });
}

function writeReport() {
  const m = machine();
  const lines = [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` (scripts/bench/run.mjs) on ${new Date().toISOString().slice(0, 10)}${quick ? ' (quick mode: fewer repetitions)' : ''}. Every figure is a median of`,
    `several runs measured side by side in the same run; ratios compare nabla-build with its baseline.`,
    '',
    '## Machine',
    '',
    ...Object.entries(m).map(([k, v]) => `- ${k}: ${v}`),
    '',
    '## Figures',
    '',
    '| figure | nabla-build | baseline | ratio | target | |',
    '|---|---|---|---|---|---|',
    ...results.map(
      (r) =>
        `| ${r.name}<br><sub>${r.detail}</sub> | ${r.ours} | ${r.baseline} | ${r.ratio} | ${r.target} | ${r.met ? 'met' : '**missed**'} |`,
    ),
    '',
  ];
  const notes = join(repo, 'docs', 'benchmarks-notes.md');
  let tail = '';
  try {
    tail = readFileSync(notes, 'utf8');
  } catch {}
  writeFileSync(join(repo, 'docs', 'benchmarks.md'), `${lines.join('\n')}${tail ? `\n${tail}` : ''}`);
  console.error(`wrote ${join(repo, 'docs', 'benchmarks.md')}`);
}
