import { constants } from 'node:fs';
import { chmod, copyFile, mkdir, rename, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { writeFileAtomic } from '@nabla-build/fsio';
import { BuildError, type PackageBuildSpec, UsageError } from '@nabla-build/model';
import { inside, requireDirectory, runRecipeCommands } from './recipe-commands.js';
import {
  CANONICAL_ROOT,
  CANONICAL_TOOLCHAIN,
  CANONICAL_WORK,
  type CanonicalMount,
  openBuildRoot,
} from './canonical-root.js';

/** A verified tarball from the download cache, and where the package Makefile expects it. */
export interface PackageTarball {
  /** Source name (recipes/sources.yaml). */
  name: string;
  /** File name the Makefile looks for (e.g. `Python-3.5.2.tar.xz`). */
  file: string;
  /** Directory relative to the build tree (e.g. `python3/dl`); default the tree root. */
  placeIn?: string;
  /** The file itself (e.g. `<cache>/downloads/<sha256>/Python-3.5.2.tar.xz`). */
  path: string;
}

export interface BuildPackageOptions {
  target: PackageBuildSpec;
  /** The checked-out package tree (rumprun-packages). */
  treeDir: string;
  /** The built toolchain tree. */
  toolchainDir: string;
  /**
   * The toolchain's wrappers (its recipe's `provides.bin`, e.g. frankenlibc's `rump/bin`), relative to
   * `toolchainDir`: first on PATH, and required to exist. None: PATH is left as it is.
   */
  binDir?: string;
  tarballs: PackageTarball[];
  /** Substituted for `${jobs}` where the recipe asks for it; never added to make on its own. */
  jobs: number;
  logFile: string;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  /** The environment the commands' allow list picks from (env.ts): the CLI's own, passed down. */
  baseEnv: Readonly<Record<string, string | undefined>>;
  /** Extra environment (applied after scrubbing, before the recipe command's own `env` and `unset`). */
  env?: Record<string, string | undefined>;
  /**
   * Build in a canonical build root: `toolchain` (the host directory of the toolchain tree, normally
   * `toolchainDir`) is mounted at /mnt/nabla-build/toolchain and `work` (the package tree, normally `treeDir`)
   * at /mnt/nabla-build/work; the commands run there with /mnt/nabla-build/toolchain/rump/bin first on PATH.
   * Without `work`, `treeDir` must be inside the toolchain tree (targets built in it, like hello). config.mk
   * and the tarballs are written on the host paths (the same files). Needed for a toolchain built with
   * buildToolchain's `canonical` (whose wrappers name /mnt/nabla-build/toolchain); on a host that cannot enter
   * a root the build runs without one, as there (`canonical: false`).
   */
  canonical?: { toolchain: string; work?: string };
}

export interface BuildPackageResult {
  /** The config.mk written, if the recipe has `configMk`. */
  configMk?: string;
  /** Where each tarball was put. */
  placed: string[];
  /** As BuildToolchainResult's (true also when `canonical` was asked for and the recipe has no command). */
  canonical: boolean;
}

const MAKE_VAR = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Builds a target in its package tree: writes `config.mk` (rumprun-packages' contract), puts every tarball where
 * the Makefile looks for it (so its own download step never runs), and runs the recipe's commands with the
 * toolchain's `rump/bin` first on PATH, in the allow-listed environment of env.ts. `-j` is not added: not
 * every package Makefile is parallel-safe, so parallelism happens only where a command says `${jobs}`.
 */
export async function buildPackage(opts: BuildPackageOptions): Promise<BuildPackageResult> {
  const { target } = opts;
  const tree = resolve(opts.treeDir);
  const subject = `building ${target.name} (${target.file})`;
  await requireDirectory(tree, `${subject}: the package tree`, target.file);
  await mkdir(dirname(opts.logFile), { recursive: true });
  const result: BuildPackageResult = { placed: [], canonical: false };
  const wanted: CanonicalMount[] | undefined = opts.canonical && [
    { host: opts.canonical.toolchain, canonical: CANONICAL_TOOLCHAIN },
    ...(opts.canonical.work ? [{ host: opts.canonical.work, canonical: CANONICAL_WORK }] : []),
  ];

  const entries = Object.entries(target.build.configMk);
  if (entries.length > 0) {
    for (const [k, v] of entries) {
      if (!MAKE_VAR.test(k) || /[\r\n]/.test(v)) {
        throw new UsageError(
          'recipe.config-mk',
          `${target.file}: build.configMk.${k}: not a valid make variable assignment`,
          {
            where: target.file,
            hint: 'names are letters, digits and _; values are one line',
          },
        );
      }
    }
    const file = join(tree, 'config.mk');
    const text = `# Written by nabla-build for ${target.name} (${target.file}).\n${entries.map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
    await writeFileAtomic(file, text);
    result.configMk = file;
  }

  for (const t of opts.tarballs) {
    const dest = inside(tree, join(t.placeIn ?? '.', t.file), `${target.file}: source ${t.name} placeIn`);
    await stat(t.path).catch(() => {
      throw new BuildError('package.tarball-missing', `${subject}: tarball ${t.name} is not at ${t.path}`, {
        where: t.path,
        hint: `run \`nabla-build fetch ${target.name}\``,
      });
    });
    await mkdir(dirname(dest), { recursive: true });
    // A copy (a reflink where the filesystem can), never a hard link: a Makefile that touches or rewrites its
    // download must not be able to alter the verified file in the cache.
    await copyFile(t.path, `${dest}.tmp`, constants.COPYFILE_FICLONE);
    await chmod(`${dest}.tmp`, 0o644);
    await rename(`${dest}.tmp`, dest);
    result.placed.push(dest);
  }

  if (target.manifest) {
    await writeFileAtomic(
      inside(tree, target.manifest.file, `${target.file}: manifest.file`),
      solo5ManifestJson(target.manifest),
    );
  }

  const bin = opts.binDir === undefined ? undefined : join(resolve(opts.toolchainDir), opts.binDir);
  if (target.build.commands.length === 0) {
    // Nothing ran, so nothing recorded a host path.
    result.canonical = opts.canonical !== undefined;
    return result;
  }
  if (bin) await requireDirectory(bin, `${subject}: the toolchain's`, target.file);
  const root = await openBuildRoot(wanted, subject, target.build.commands.length);
  result.canonical = root.canonical;
  root.path(tree); // the tree must be inside one of the canonical root's directories
  // The PATH entry is the one the commands see: in a canonical root, /mnt/nabla-build/toolchain/rump/bin,
  // where the wrappers of a canonically built toolchain find their headers and libraries.
  const pathBin = bin === undefined ? undefined : root.path(bin);
  try {
    await runRecipeCommands({
      subject,
      where: `${target.file}: build.commands`,
      commands: target.build.commands,
      tree,
      root,
      jobs: opts.jobs,
      baseEnv: opts.baseEnv,
      extraEnv: opts.env,
      path: { bin: pathBin },
      logFile: opts.logFile,
      signal: opts.signal,
      onLine: opts.onLine,
      hintFor: (tail) => packageHint(tail, target, root.canonical),
    });
  } finally {
    await root.close();
  }
  return result;
}

/** Hints for failures every package build can hit. */
function packageHint(tail: readonly string[], target: PackageBuildSpec, canonical: boolean): string | undefined {
  const text = tail.join('\n');
  if (!canonical && text.includes(`${CANONICAL_ROOT}/`))
    return `the toolchain was built in a canonical build root (its wrappers name ${CANONICAL_TOOLCHAIN}), which this build could not enter: build the package with the \`canonical\` option on a host that supports it, or rebuild the toolchain without it (\`nabla-build build <target> --rebuild toolchain\`)`;
  if (/scripts\/fetch\.sh|download attempted|wget|curl: \(\d+\)/.test(text))
    return `the Makefile tried to download a file: a source it needs is missing from \`sources\` in ${target.file} (or its placeIn is wrong)`;
  if (/rumprun-linux-(cc|c\+\+|gcc|g\+\+)(: command)? not found|rumprun-linux-(cc|c\+\+).*No such file/.test(text))
    return 'the toolchain wrappers are not on PATH: rebuild the toolchain (`nabla-build build <target> --rebuild toolchain`)';
  if (/Please set RUMPRUN_TOOLCHAIN_TUPLE/.test(text))
    return `set build.configMk.RUMPRUN_TOOLCHAIN_TUPLE in ${target.file}`;
  return undefined;
}

/**
 * A Solo5 manifest source (MFT version 1, the format of the pinned Solo5's `solo5-elftool gen-manifest`, see its
 * tests/<name>/manifest.json): the target's block and net devices, in that order.
 */
function solo5ManifestJson(m: { block: string[]; net: string[] }): string {
  const devices = [
    ...m.block.map((name) => ({ name, type: 'BLOCK_BASIC' })),
    ...m.net.map((name) => ({ name, type: 'NET_BASIC' })),
  ];
  return `${JSON.stringify({ type: 'solo5.manifest', version: 1, devices }, null, 2)}\n`;
}
