import { chmod, lstat, mkdir, readFile, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { CommandError, run } from '@nabla-build/exec';
import { BuildError, UsageError } from '@nabla-build/model';
import type { PatchTarget } from './parse.js';
import { type PatchRef, patchTargets } from './series.js';

/** A patch series ready to apply: the files in order, and where/how `patch` runs. */
export interface SeriesToApply {
  patches: PatchRef[];
  /** Directory, relative to the tree root, in which `patch` runs. */
  applyIn: string;
  strip: number;
  /** Largest fuzz factor accepted (0 = exact context). */
  maxFuzz: number;
  /** Largest |line offset| accepted per hunk. */
  maxOffset: number;
}

export interface ApplyOptions {
  /** Source name and rev of the tree, for the "refresh the patch against <source>@<rev>" hint. */
  source?: string;
  rev?: string;
  /** Output of every `patch` run is appended here. */
  logFile?: string;
  /**
   * Who owns the series: `upstream` (shipped inside the source, applied as it is: never "refresh" it) or
   * `project` (ours, in patches/). Default `project`.
   */
  origin?: 'upstream' | 'project';
  /** The git trees of the checkout (path relative to the tree root, '' = the superproject): names the exact commit. */
  trees?: { path: string; git: string; rev: string }[];
  /**
   * The tree is removed when the series fails (a build step's scratch tree): hints then describe a checkout of
   * the same commit to make, never a path inside the removed tree.
   */
  transient?: boolean;
  signal?: AbortSignal;
}

/** A hunk that did not apply exactly where the patch says. */
export interface HunkReport {
  /** Relative to the tree root. */
  file: string;
  hunk: number;
  /** Line where it applied (or failed). */
  line: number;
  fuzz: number;
  offset: number;
}

export interface PatchResult {
  name: string;
  path: string;
  status: 'applied' | 'already-applied';
  /** Files the patch touches, relative to the tree root. */
  targets: string[];
  /** The git working trees (relative to the tree root, `''` = root) those files belong to. */
  trees: string[];
  /** Hunks applied with fuzz or offset (exact hunks are not listed). */
  hunks: HunkReport[];
  /** Largest fuzz and largest |offset| over the hunks. */
  fuzz: number;
  offset: number;
}

/** Each kind of failure, as the message names it. */
const FAILURE_TEXT = {
  conflict: 'conflict',
  fuzz: 'too much fuzz',
  offset: 'too large an offset',
  'partially-applied': 'partially applied',
  'missing-file': 'file to patch is missing',
  'file-exists': 'file to create already exists',
  malformed: 'malformed patch',
  other: 'patch error',
};
export type PatchFailureKind = keyof typeof FAILURE_TEXT;

/** `patch.failed`: names the patch, the target file and hunk, what kind of failure, and how to refresh it. */
export class PatchError extends BuildError {
  readonly patch: string;
  readonly patchPath: string;
  readonly file?: string;
  readonly hunk?: number;
  readonly kind: PatchFailureKind;
  /** The patches of the series that had been applied and were reversed. */
  readonly rolledBack: string[];
  constructor(
    message: string,
    f: {
      patch: string;
      patchPath: string;
      file?: string;
      hunk?: number;
      kind: PatchFailureKind;
      rolledBack: string[];
      hint: string;
      where: string;
    },
  ) {
    super('patch.failed', message, { where: f.where, hint: f.hint });
    this.patch = f.patch;
    this.patchPath = f.patchPath;
    if (f.file !== undefined) this.file = f.file;
    if (f.hunk !== undefined) this.hunk = f.hunk;
    this.kind = f.kind;
    this.rolledBack = f.rolledBack;
  }
}

const PATCH_ENV: Record<string, string | undefined> = {
  LC_ALL: 'C',
  LANGUAGE: undefined,
  QUOTING_STYLE: 'literal',
  POSIXLY_CORRECT: undefined,
  PATCH_GET: '0',
  PATCH_VERSION_CONTROL: undefined,
  VERSION_CONTROL: undefined,
  SIMPLE_BACKUP_SUFFIX: undefined,
};

async function runPatch(cwd: string, args: string[], opts: ApplyOptions): Promise<{ code: number; lines: string[] }> {
  const lines: string[] = [];
  try {
    await run('patch', args, {
      cwd,
      env: PATCH_ENV,
      onLine: (l) => lines.push(l),
      tailLines: 5,
      ...(opts.logFile ? { logFile: opts.logFile } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return { code: 0, lines };
  } catch (e) {
    if (e instanceof CommandError && e.exitStatus !== undefined) return { code: e.exitStatus, lines };
    throw e;
  }
}

/** What `patch` said about each hunk and file. */
interface Outcome {
  /** Files named by "checking file" / "patching file", in order (relative to the apply dir). */
  files: string[];
  hunks: { file: string; hunk: number; line: number; fuzz: number; offset: number; failed: boolean }[];
  problems: { kind: PatchFailureKind; file?: string; text: string; inputLine?: number }[];
}

function parseOutput(lines: string[]): Outcome {
  const out: Outcome = { files: [], hunks: [], problems: [] };
  let file = '';
  for (const raw of lines) {
    const line = raw.trimEnd();
    let m = /^(?:checking|patching) file (.+)$/.exec(line);
    if (m?.[1]) {
      file = m[1];
      out.files.push(file);
      continue;
    }
    m = /^Hunk #(\d+) succeeded at (\d+)(?: with fuzz (\d+))?(?: \(offset (-?\d+) lines?\))?\./.exec(line);
    if (m) {
      out.hunks.push({
        file,
        hunk: Number(m[1]),
        line: Number(m[2]),
        fuzz: Number(m[3] ?? 0),
        offset: Number(m[4] ?? 0),
        failed: false,
      });
      continue;
    }
    m = /^Hunk #(\d+) (?:FAILED|ignored) at (\d+)/.exec(line);
    if (m) {
      out.hunks.push({ file, hunk: Number(m[1]), line: Number(m[2]), fuzz: 0, offset: 0, failed: true });
      continue;
    }
    m = /^can't find file to patch at input line (\d+)/.exec(line);
    if (m) {
      out.problems.push({ kind: 'missing-file', text: line, inputLine: Number(m[1]) });
      continue;
    }
    m = /^The next patch would create the file (.+), which already exists!/.exec(line);
    if (m?.[1]) {
      out.problems.push({ kind: 'file-exists', file: m[1], text: line });
      continue;
    }
    m = /^The next patch would delete the file (.+), which does not exist!/.exec(line);
    if (m?.[1]) {
      out.problems.push({ kind: 'missing-file', file: m[1], text: line });
      continue;
    }
    if (/^Reversed \(or previously applied\) patch detected!/.test(line)) {
      out.problems.push({ kind: 'partially-applied', file, text: line });
      continue;
    }
    if (/^patch: \*\*\*\* (malformed patch|Only garbage)/.test(line)) {
      out.problems.push({ kind: 'malformed', text: line.replace(/^patch: \*\*\*\* /, '') });
      continue;
    }
    if (/^patch: \*\*\*\* /.test(line) || /refusing to patch|is not a regular file|Permission denied/.test(line)) {
      out.problems.push({ kind: 'other', file, text: line.replace(/^patch: \*\*\*\* /, '') });
    }
  }
  return out;
}

type SnapEntry = { kind: 'file'; content: Buffer; mode: number } | { kind: 'absent' } | { kind: 'other' };

interface Snapshot {
  /** Absolute path → what was there before the patch. */
  files: Map<string, SnapEntry>;
  /** Directories that did not exist before (parents first). */
  newDirs: string[];
}

async function snapshot(paths: string[], stopAt: string): Promise<Snapshot> {
  const snap: Snapshot = { files: new Map(), newDirs: [] };
  for (const p of paths) {
    if (snap.files.has(p)) continue;
    const st = await lstat(p).catch(() => undefined);
    if (st?.isFile()) {
      snap.files.set(p, { kind: 'file', content: await readFile(p), mode: st.mode & 0o7777 });
      continue;
    }
    if (st) {
      snap.files.set(p, { kind: 'other' });
      continue;
    }
    snap.files.set(p, { kind: 'absent' });
    const missing: string[] = [];
    let d = dirname(p);
    while (d.startsWith(stopAt + sep)) {
      try {
        await stat(d);
        break;
      } catch {
        missing.push(d);
        d = dirname(d);
      }
    }
    snap.newDirs.push(...missing.reverse());
  }
  return snap;
}

async function restore(snap: Snapshot): Promise<void> {
  for (const [p, s] of snap.files) {
    if (s.kind === 'absent') await rm(p, { force: true });
    else if (s.kind === 'file') {
      await mkdir(dirname(p), { recursive: true });
      await rm(p, { force: true });
      await writeFile(p, s.content, { mode: s.mode });
      await chmod(p, s.mode);
    }
  }
  for (const d of [...snap.newDirs].reverse()) {
    try {
      await rmdir(d);
    } catch {
      // Not empty (something else lives there now) or already gone.
    }
  }
}

/** The git working tree containing `file` (absolute), if it lies inside `root`; undefined otherwise. */
async function gitTreeOf(file: string, root: string): Promise<string | undefined> {
  if (!file.startsWith(root + sep)) return undefined;
  let d = dirname(file);
  for (;;) {
    try {
      await lstat(join(d, '.git'));
      return d;
    } catch {
      // keep walking up
    }
    if (d === root || !d.startsWith(root + sep)) return undefined;
    d = dirname(d);
  }
}

async function gitStatus(tree: string, opts: ApplyOptions): Promise<string> {
  const r = await run('git', ['status', '--porcelain', '--ignore-submodules=none', '--untracked-files=all'], {
    cwd: tree,
    env: { LC_ALL: 'C', GIT_DIR: undefined, GIT_WORK_TREE: undefined, GIT_INDEX_FILE: undefined },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return r.stdout;
}

/**
 * Applies a series in order inside `<treeRoot>/<applyIn>`. A patch whose reverse applies fully is reported
 * `already-applied` and left alone. Otherwise a dry run checks every hunk: a failed hunk, fuzz above `maxFuzz`
 * or |offset| above `maxOffset` aborts the series, restores every file the series changed (snapshots taken
 * before each patch) and throws a PatchError naming the patch, file, hunk and kind. No `.orig`/`.rej` files are
 * left, and `git status --porcelain` of every git tree the series touches is exactly what it was before.
 */
export async function applySeries(
  treeRoot: string,
  series: SeriesToApply,
  opts: ApplyOptions = {},
): Promise<PatchResult[]> {
  const root = resolve(treeRoot);
  const cwd = resolve(root, series.applyIn);
  try {
    if (!(await stat(cwd)).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new UsageError('patch.apply-dir-missing', `cannot apply patches in ${cwd}: no such directory`, {
      where: cwd,
      hint: "check the series' `applyIn` in the recipe",
    });
  }
  const parsed: { ref: PatchRef; targets: PatchTarget[]; files: string[] }[] = [];
  for (const ref of series.patches) {
    const targets = await patchTargets(ref, series.strip);
    parsed.push({ ref, targets, files: targets.flatMap((t) => [t.path, ...(t.oldPath ? [t.oldPath] : [])]) });
  }
  const toRoot = (p: string) => relative(root, resolve(cwd, p)).split(sep).join('/');
  const absOf = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));

  // Status of every git tree the series may touch, to prove a rollback restored it. (A transient tree is
  // removed when the series fails: nothing to prove, no git to start.)
  const statusBefore = new Map<string, string>();
  if (!opts.transient) {
    const trees = new Set(await Promise.all(parsed.flatMap((p) => p.files).map((f) => gitTreeOf(absOf(f), root))));
    for (const t of trees) if (t) statusBefore.set(t, await gitStatus(t, opts));
  }

  const strip = `-p${series.strip}`;
  const dryFuzz = Math.max(2, series.maxFuzz);
  const common = ['-f', strip, '--no-backup-if-mismatch', '-r', '-'];
  const applied: { name: string; snap: Snapshot }[] = [];
  const results: PatchResult[] = [];

  for (const { ref, targets, files: rel } of parsed) {
    const trees = [
      ...new Set(
        (await Promise.all(rel.map((f) => gitTreeOf(absOf(f), root)))).map((t) =>
          t === undefined ? '' : relative(root, t).split(sep).join('/'),
        ),
      ),
    ];
    // Applied for real at once, the files it touches saved first: a patch that applies as the series allows
    // costs one `patch`. Otherwise its files are put back, and a reverse dry run says whether it is already
    // there (`-N` refuses it); if not, a dry run with more fuzz says why it does not fit.
    const snap = await snapshot(rel.map(absOf), root);
    applied.push({ name: ref.name, snap });
    const real = await runPatch(cwd, ['-N', ...common, `--fuzz=${series.maxFuzz}`, '-i', ref.path], opts);
    const realOutcome = parseOutput(real.lines);
    if (judge(realOutcome, NOTHING_REVERSED, real.code, series, targets)) {
      await restore(snap);
      applied.pop();
      const reverse = await runPatch(
        cwd,
        ['-R', '--dry-run', ...common, `--fuzz=${series.maxFuzz}`, '-i', ref.path],
        opts,
      );
      if (reverse.code === 0 && targets.length > 0) {
        results.push({
          name: ref.name,
          path: ref.path,
          status: 'already-applied',
          targets: rel.map(toRoot),
          trees,
          hunks: [],
          fuzz: 0,
          offset: 0,
        });
        continue;
      }
      const dry = await runPatch(cwd, ['--dry-run', '-N', ...common, `--fuzz=${dryFuzz}`, '-i', ref.path], opts);
      const failure = judge(parseOutput(dry.lines), parseOutput(reverse.lines), dry.code, series, targets) ?? {
        kind: 'other' as const,
        text: real.lines.slice(-3).join(' | '),
      };
      await fail(failure, ref, targets, trees);
    }
    const hunks = realOutcome.hunks
      .filter((h) => !h.failed)
      .map((h) => ({ file: toRoot(h.file), hunk: h.hunk, line: h.line, fuzz: h.fuzz, offset: h.offset }));
    results.push({
      name: ref.name,
      path: ref.path,
      status: 'applied',
      targets: rel.map(toRoot),
      trees,
      hunks,
      fuzz: Math.max(0, ...hunks.map((h) => h.fuzz)),
      offset: Math.max(0, ...hunks.map((h) => Math.abs(h.offset))),
    });
  }
  return results;

  async function fail(f: Failure, ref: PatchRef, targets: PatchTarget[], trees: string[]): Promise<never> {
    const rolledBack = applied.map((a) => a.name).reverse();
    for (const a of [...applied].reverse()) await restore(a.snap);
    const changed: string[] = [];
    for (const [tree, before] of statusBefore) {
      if ((await gitStatus(tree, opts)) !== before) changed.push(relative(root, tree) || '.');
    }
    const { file, what, hint, shownPatch } = await explain(f, ref, targets, trees, { root, cwd, series, opts });
    const rb = rolledBack.length > 0 ? `; rolled back ${rolledBack.join(', ')}` : '';
    const bad = changed.length > 0 ? `; WARNING: could not fully restore ${changed.join(', ')}` : '';
    throw new PatchError(`patch ${ref.name} does not apply (${FAILURE_TEXT[f.kind]}): ${what}: ${f.text}${rb}${bad}`, {
      patch: ref.name,
      patchPath: ref.path,
      ...(file !== undefined ? { file } : {}),
      ...(f.hunk !== undefined ? { hunk: f.hunk } : {}),
      kind: f.kind,
      rolledBack,
      hint,
      where: f.hunk !== undefined ? `${shownPatch} hunk #${f.hunk}` : shownPatch,
    });
  }
}

/** Explain: the file and hunk that failed, the tree and pin the patch was applied to, and the command that fixes it. */
async function explain(
  f: Failure,
  ref: PatchRef,
  targets: PatchTarget[],
  trees: string[],
  { root, cwd, series, opts }: { root: string; cwd: string; series: SeriesToApply; opts: ApplyOptions },
): Promise<{ file: string | undefined; what: string; hint: string; shownPatch: string }> {
  const toRoot = (p: string) => relative(root, resolve(cwd, p)).split(sep).join('/');
  const file = f.file !== undefined ? toRoot(f.file) : targets[0] ? toRoot(targets[0].path) : undefined;
  const tree =
    file !== undefined
      ? await gitTreeOf(resolve(root, file), root)
      : trees[0] !== undefined
        ? resolve(root, trees[0])
        : undefined;
  const what = f.hunk !== undefined ? `hunk #${f.hunk} of ${file}` : (file ?? 'the patch');
  const treeDir = tree ?? cwd;
  const treeRel = relative(root, treeDir).split(sep).join('/');
  const pinned = opts.trees?.find((t) => t.path === treeRel);
  const against = pinned
    ? `${opts.source ?? 'the source'}${pinned.path ? `/${pinned.path}` : ''}@${pinned.rev.slice(0, 12)}`
    : opts.source
      ? `${opts.source}${opts.rev ? `@${opts.rev.slice(0, 12)}` : ''}`
      : 'the pinned source';
  // `git diff` run in the sub-tree, with prefixes that make its paths match the series' applyIn and strip.
  const sub = relative(cwd, treeDir).split(sep).join('/');
  const prefixes =
    series.strip === 1 && sub && !sub.startsWith('..') ? ` --src-prefix=a/${sub}/ --dst-prefix=b/${sub}/` : '';
  const upstream = opts.origin === 'upstream';
  // An upstream patch lives inside the (removed) tree: name it by its path in the source instead.
  const shownPatch = upstream ? `${opts.source ?? 'the source'}'s ${relative(root, ref.path)}` : ref.path;
  const checkoutHow = pinned
    ? `a checkout of ${against} (\`git clone ${pinned.git} t && git -C t checkout ${pinned.rev}\`)`
    : `a checkout of ${against}`;
  const regenerate = opts.transient
    ? `\`git diff${prefixes} > ${ref.path}\` in ${pinned ? 't' : 'that checkout'}`
    : `\`git -C ${treeDir} diff${prefixes} > ${ref.path}\``;
  const fresh = opts.transient ? `${checkoutHow} (the build tree was removed)` : 'a fresh checkout';
  let hint: string;
  if (f.kind === 'missing-file' || f.kind === 'malformed') {
    hint = `check the patch and the series' strip (-p${series.strip}) and applyIn (${series.applyIn || '.'})`;
    if (upstream && f.kind === 'missing-file')
      hint = `${against} has no ${file ?? 'file the patch names'}: that tree is not what ${shownPatch} was written for (an override or mirror pointing at another repository, or an incomplete tree?); otherwise ${hint}`;
  } else if (upstream) {
    hint = `${shownPatch} ships with ${opts.source ?? 'the source'} and is applied as it is (do not edit it): it does not fit ${against}. If an override or a moved pin gave that tree another commit, pin the one the superproject records; to keep the commit, leave the patch out of the series (\`only:\`) and carry an adapted copy as a project patch in patches/`;
  } else if (f.kind === 'fuzz' || f.kind === 'offset') {
    hint = `the patch still applies loosely to ${against}: apply it in ${fresh} (\`patch -p${series.strip} -i ${ref.path}\`${opts.transient ? '' : ` in ${cwd}`}), check the result and regenerate it with ${regenerate}; or raise ${f.kind === 'fuzz' ? 'maxFuzz' : 'maxOffset'} in the recipe`;
  } else {
    hint = `refresh the project patch against ${against}: make the change by hand in ${fresh}, then ${regenerate}`;
  }
  return { file, what, hint, shownPatch };
}

interface Failure {
  kind: PatchFailureKind;
  file?: string;
  hunk?: number;
  text: string;
}

/** The reverse outcome of a patch that was not tried in reverse (it applied forward). */
const NOTHING_REVERSED: Outcome = { files: [], hunks: [], problems: [] };

/** The first reason a dry run is not acceptable, or undefined. */
function judge(
  out: Outcome,
  reverse: Outcome,
  code: number,
  series: SeriesToApply,
  targets: PatchTarget[],
): Failure | undefined {
  const problem = out.problems[0];
  if (problem) {
    let file = problem.file;
    if (problem.kind === 'missing-file' && file === undefined && problem.inputLine !== undefined) {
      // The target whose header is closest before the line patch complains about.
      const line = problem.inputLine;
      file = [...targets].reverse().find((t) => t.patchLine <= line)?.path ?? targets[0]?.path;
    }
    const text =
      problem.kind === 'missing-file'
        ? 'the file to patch does not exist'
        : problem.kind === 'partially-applied'
          ? 'some hunks are already applied and others are not'
          : problem.text;
    return { kind: problem.kind, ...(file ? { file } : {}), text };
  }
  for (const h of out.hunks) {
    if (h.failed) {
      // A hunk that fails forward but applies in reverse is already there: the patch is half applied.
      const failedReverse = reverse.hunks.some((r) => r.file === h.file && r.hunk === h.hunk && r.failed);
      const reverseKnown = reverse.files.includes(h.file);
      if (reverseKnown && !failedReverse) {
        return {
          kind: 'partially-applied',
          file: h.file,
          hunk: h.hunk,
          text: `hunk #${h.hunk} is already applied (at line ${h.line}) while others are not`,
        };
      }
      return {
        kind: 'conflict',
        file: h.file,
        hunk: h.hunk,
        text: `FAILED at line ${h.line}: its context or removed lines are not in the file`,
      };
    }
    if (h.fuzz > series.maxFuzz) {
      return {
        kind: 'fuzz',
        file: h.file,
        hunk: h.hunk,
        text: `applies only with fuzz ${h.fuzz} (at line ${h.line}); the series allows ${series.maxFuzz}`,
      };
    }
    if (Math.abs(h.offset) > series.maxOffset) {
      return {
        kind: 'offset',
        file: h.file,
        hunk: h.hunk,
        text: `applies ${Math.abs(h.offset)} lines ${h.offset > 0 ? 'below' : 'above'} where the patch says (at line ${h.line}); the series allows ${series.maxOffset}`,
      };
    }
  }
  if (code !== 0) return { kind: 'other', text: `patch exited with code ${code}` };
  if (targets.length === 0) return { kind: 'malformed', text: 'no file changes found in the patch' };
  return undefined;
}
