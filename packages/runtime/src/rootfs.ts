/**
 * The ext4 rootfs image a unikernel mounts as block device `rootfs`, made the way runnc-lkl does
 * (`createRootfsExt4`: mkdir etc, size = AlignUp(sum of regular file sizes, 1 MiB) + 16 MiB) but with
 * `mkfs.ext4 -d` instead of `virt-make-fs`, without root, and bit-for-bit reproducible: fixed UUID and hash
 * seed, our own mke2fs.conf, fixed times (E2FSPROGS_FAKE_TIME), and every inode's owner and timestamps
 * normalised afterwards with `debugfs`.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { CommandError, run } from '@nabla-build/exec';
import { sha256File, syncDir } from '@nabla-build/fsio';
import { BuildError, UsageError } from '@nabla-build/model';

const MiB = 1024 * 1024;

/** runnc's head room over the file data (`CreateExt4`: + 16 MiB). */
export const RUNNC_EXTRA_MIB = 16;

/** How often a full image is grown before giving up. */
const MAX_GROW_ATTEMPTS = 4;

/** Default timestamp of every inode and of the superblock: 1980-01-01T00:00:00Z. */
export const DEFAULT_ROOTFS_EPOCH = 315532800;

/**
 * mke2fs defaults pinned here (e2fsprogs' stock mke2fs.conf) so the host's /etc/mke2fs.conf cannot change the
 * image. Features are those every ext4-capable LKL mounts (no orphan_file, no metadata_csum_seed).
 */
export const MKE2FS_CONF = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
	small = {
		blocksize = 1024
		inode_ratio = 4096
	}
	floppy = {
		blocksize = 1024
		inode_ratio = 8192
	}
	big = {
		inode_ratio = 32768
	}
	huge = {
		inode_ratio = 65536
	}
`;

export interface RootfsOptions {
  /** Seconds since the epoch for every timestamp (>= 1); default 1980-01-01. */
  epoch?: number;
  /** MiB added to the file data; default 16, as runnc. */
  extraMiB?: number;
  signal?: AbortSignal;
  logFile?: string;
}

export interface RootfsResult {
  path: string;
  sizeMiB: number;
  uuid: string;
  sha256: string;
  /** Regular files and their total size (what the size formula counts). */
  files: number;
  fileBytes: number;
}

/** runnc's size formula: AlignUp(bytes, 1 MiB) / 1 MiB + 16. */
export function rootfsSizeMiB(fileBytes: number, extraMiB = RUNNC_EXTRA_MIB): number {
  return Math.ceil(fileBytes / MiB) + extraMiB;
}

interface Entry {
  /** Path inside the image, starting with `/`. */
  path: string;
  kind: 'file' | 'dir' | 'symlink' | 'other';
  mode: number;
  size: number;
  link?: string;
  sha256?: string;
}

/** Creates `outFile` (atomically) as an ext4 image of `rootDir`; the same content always gives the same bytes. */
export async function makeRootfsImage(
  rootDir: string,
  outFile: string,
  opts: RootfsOptions = {},
): Promise<RootfsResult> {
  const root = resolve(rootDir);
  const rootStat = await stat(root).catch(() => undefined);
  if (!rootStat?.isDirectory()) {
    throw new UsageError('rootfs.missing', `rootfs directory ${root} does not exist or is not a directory`);
  }
  const epoch = opts.epoch ?? DEFAULT_ROOTFS_EPOCH;
  if (!Number.isInteger(epoch) || epoch < 1 || epoch > 0xffffffff) {
    throw new UsageError('rootfs.invalid-epoch', `rootfs epoch ${epoch} must be a whole number of seconds >= 1`);
  }
  const extraMiB = opts.extraMiB ?? RUNNC_EXTRA_MIB;
  // Top-level directories the image always has, created when the tree lacks them (runnc's `mkdir etc`).
  const ensureDirs = ['/etc'];

  const entries = await walk(root);
  const regular = entries.filter((e) => e.kind === 'file');
  const fileBytes = regular.reduce((sum, e) => sum + e.size, 0);
  let sizeMiB = rootfsSizeMiB(fileBytes, extraMiB);
  // Also the directory hash seed: the same content always gives the same image.
  const uuid = uuidFromContent(entries, { epoch, extraMiB, ensureDirs });

  const out = resolve(outFile);
  await mkdir(dirname(out), { recursive: true });
  const tmp = join(dirname(out), `.${randomBytes(4).toString('hex')}-${process.pid}.rootfs.tmp`);
  const work = await mkdtemp(join(tmpdir(), 'nabla-rootfs-'));
  const env = {
    E2FSPROGS_FAKE_TIME: String(epoch),
    SOURCE_DATE_EPOCH: String(epoch),
    MKE2FS_CONFIG: join(work, 'mke2fs.conf'),
    LC_ALL: 'C',
    TZ: 'UTC',
  };
  const runOpts = { cwd: work, env, signal: opts.signal, logFile: opts.logFile };
  try {
    await writeFile(env.MKE2FS_CONFIG, MKE2FS_CONF);
    // runnc's formula leaves no room for many small files (inodes, directory blocks) or large journals; when
    // mkfs runs out of space, grow the image by fixed steps (deterministic: same tree, same final size).
    for (let attempt = 0; ; attempt++) {
      await rm(tmp, { force: true }); // a fresh file each time: no leftover blocks from a failed attempt
      try {
        await run(
          'mkfs.ext4',
          ['-q', '-F', '-U', uuid, '-E', `root_owner=0:0,hash_seed=${uuid}`, '-d', root, tmp, `${sizeMiB}M`],
          runOpts,
        );
        break;
      } catch (err) {
        const full = err instanceof CommandError && err.tail.some((l) => /Could not allocate|No space left/i.test(l));
        if (!full || attempt >= MAX_GROW_ATTEMPTS) {
          if (full && err instanceof CommandError) {
            throw new BuildError('rootfs.too-small', `${root} does not fit in a ${sizeMiB} MiB ext4 image`, {
              where: root,
              // (extraMiB is the library's knob; the CLI's user can only make the tree smaller.)
              hint: `the tree has ${entries.length} entries and ${fileBytes} bytes of files, and the image grew ${MAX_GROW_ATTEMPTS} times: put fewer or smaller files in it (the log shows what mkfs.ext4 ran out of)`,
              ...(err.logPath ? { logPath: err.logPath } : {}),
              cause: err,
            });
          }
          throw err;
        }
        sizeMiB += Math.max(RUNNC_EXTRA_MIB, Math.ceil(sizeMiB / 4));
      }
    }
    await normaliseInodes(tmp, entries, ensureDirs, epoch, join(work, 'debugfs'), runOpts, out);
    const sha256 = await sha256File(tmp);
    await rename(tmp, out);
    await syncDir(dirname(out));
    return { path: out, sizeMiB, uuid, sha256, files: regular.length, fileBytes };
  } finally {
    await rm(tmp, { force: true });
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * Adds the missing `ensureDirs`, then sets owner 0:0 and every timestamp (with its nanoseconds) of every inode
 * to `epoch`: mkfs copies ctime from the source tree, which no one can set. Inodes are addressed by number
 * (`sif <ino>`), found with one `ls -p` per directory, so big directories cost no repeated lookups.
 */
async function normaliseInodes(
  img: string,
  entries: Entry[],
  ensureDirs: string[],
  epoch: number,
  scriptBase: string,
  runOpts: Parameters<typeof run>[2],
  out: string,
): Promise<void> {
  const existing = new Set(entries.map((e) => e.path));
  const missing = ensureDirs.filter((d) => !existing.has(d));
  const dirs = new Set(['/', ...entries.filter((e) => e.kind === 'dir').map((e) => e.path), ...missing]);
  const listCmds = [
    ...missing.map((d) => `mkdir ${debugfsQuote(d)}`),
    ...[...dirs].map((d) => `ls -p ${debugfsQuote(d)}`),
  ];
  const listed = await debugfs(img, `${scriptBase}-list`, listCmds, runOpts, out);
  const inodes = new Set<number>();
  let named = 0;
  for (const line of listed.split('\n')) {
    const m = /^\/(\d+)\/[0-7]+\/\d+\/\d+\/([^/]*)\/\d*\/$/.exec(line);
    if (!m) continue;
    inodes.add(Number(m[1]));
    if (m[2] !== '.' && m[2] !== '..') named++;
  }
  // Every entry of the tree, lost+found and the added directories: anything else means mkfs skipped a file.
  const expected = entries.length + 1 + missing.length;
  if (named !== expected) {
    throw new BuildError('rootfs.incomplete', `the image of ${out} lists ${named} entries, the tree has ${expected}`, {
      ...(runOpts.logFile ? { logPath: runOpts.logFile } : {}),
    });
  }
  const cmds: string[] = [];
  for (const ino of [...inodes].sort((a, b) => a - b)) {
    cmds.push(`sif <${ino}> uid 0`, `sif <${ino}> gid 0`);
    for (const t of ['atime', 'mtime', 'ctime', 'crtime'])
      cmds.push(`sif <${ino}> ${t} @${epoch}`, `sif <${ino}> ${t}_extra 0`);
  }
  await debugfs(img, `${scriptBase}-sif`, cmds, runOpts, out);
}

/** Runs a debugfs command file read-write; debugfs exits 0 even when commands fail, so stderr is checked. */
async function debugfs(
  img: string,
  script: string,
  cmds: string[],
  runOpts: Parameters<typeof run>[2],
  out: string,
): Promise<string> {
  await writeFile(script, `${cmds.join('\n')}\n`);
  const { stdout, stderr } = await run('debugfs', ['-w', '-f', script, img], runOpts);
  const problems = stderr.split('\n').filter((l) => l.trim() !== '' && !/^debugfs \d/.test(l));
  if (problems.length > 0) {
    throw new BuildError('rootfs.normalise', `debugfs could not normalise ${out}: ${problems.slice(0, 5).join('; ')}`, {
      ...(runOpts.logFile ? { logPath: runOpts.logFile } : {}),
    });
  }
  return stdout;
}

/** Lists the tree in C-locale order (as `mkfs.ext4 -d` reads it with LC_ALL=C), hashing file contents. */
async function walk(root: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const files: { entry: Entry; abs: string }[] = [];
  const visit = async (dir: string, rel: string): Promise<void> => {
    const names = (await readdir(dir)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      if (/[\n\r]/.test(name)) {
        throw new UsageError('rootfs.bad-name', `file name ${JSON.stringify(`${rel}/${name}`)} contains a line break`, {
          where: join(dir, name),
        });
      }
    }
    const stats = await mapLimited(names, 32, (name) => lstat(join(dir, name)));
    for (const [i, name] of names.entries()) {
      const st = stats[i] as Stats;
      const abs = join(dir, name);
      const path = `${rel}/${name}`;
      const mode = st.mode & 0o7777;
      if (st.isDirectory()) {
        out.push({ path, kind: 'dir', mode, size: 0 });
        await visit(abs, path);
      } else if (st.isFile()) {
        const entry: Entry = { path, kind: 'file', mode, size: st.size };
        out.push(entry);
        files.push({ entry, abs });
      } else if (st.isSymbolicLink()) {
        out.push({ path, kind: 'symlink', mode, size: 0, link: await readlink(abs) });
      } else if (st.isSocket()) {
        // mkfs.ext4 -d skips sockets ("ignoring socket file"), so they are not in the image either.
      } else {
        out.push({ path, kind: 'other', mode: st.mode, size: 0 });
      }
    }
  };
  await visit(root, '');
  await mapLimited(files, 16, async (f) => {
    f.entry.sha256 = await sha256File(f.abs);
  });
  return out;
}

/** `Promise.all(items.map(fn))` with at most `limit` calls in flight; results in input order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** debugfs (libss) quoting: a double-quoted word in which `""` stands for one `"`. */
function debugfsQuote(path: string): string {
  return `"${path.replace(/"/g, '""')}"`;
}

/** A UUID (RFC 9562 version 8, "custom") from the sha256 of the tree listing and the options. */
function uuidFromContent(entries: Entry[], params: Record<string, unknown>): string {
  const h = createHash('sha256');
  h.update(`nabla-build rootfs v1 ${JSON.stringify(params)}\n`);
  for (const e of entries) h.update(`${JSON.stringify([e.path, e.kind, e.mode, e.size, e.sha256 ?? e.link ?? ''])}\n`);
  const b = h.digest().subarray(0, 16);
  b[6] = ((b[6] as number) & 0x0f) | 0x80;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const x = b.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
