import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { BuildError, UsageError } from '@nabla-build/model';
import { ancestors, compareNames, imagePathToEntryName, symlinkEscapesRoot } from './paths.js';

/** A file or directory of the build host copied into the image (like Dockerfile `COPY hostPath imagePath`). */
export interface HostFileInput {
  /** A file or a directory on the host. A directory's contents go under `imagePath`, recursively. */
  hostPath: string;
  /** Absolute path inside the image. */
  imagePath: string;
}

/** Bytes written into the image at `imagePath` (an SBOM, a generated config file). */
export interface ContentFileInput {
  content: string | Uint8Array;
  imagePath: string;
  /** Mode 0755 instead of 0644. */
  executable?: boolean;
}

export type ImageFileInput = HostFileInput | ContentFileInput;

/** One entry of the layer, already normalised: name relative to `/`, no leading or trailing slash. */
export type LayerEntry =
  | { kind: 'dir'; name: string }
  | { kind: 'file'; name: string; size: number; mode: number; hostPath: string }
  | { kind: 'content'; name: string; mode: number; content: Buffer }
  | { kind: 'symlink'; name: string; target: string };

const EXEC_MODE = 0o755;
const FILE_MODE = 0o644;

/** Files with any execute bit become 0755, all others 0644: host umask and ownership never reach the image. */
export function normalisedFileMode(hostMode: number): number {
  return hostMode & 0o111 ? EXEC_MODE : FILE_MODE;
}

/**
 * Walks every input and returns the layer's entries sorted byte-wise by name, with every parent directory
 * present. Symlinks inside input directories are kept (a top-level `hostPath` that is a symlink is followed,
 * like `COPY`); symlinks resolving above the image root, sockets, fifos and devices are refused.
 */
export async function collectEntries(inputs: readonly ImageFileInput[]): Promise<LayerEntry[]> {
  const entries = new Map<string, LayerEntry>();
  const origin = new Map<string, string>();

  const add = (entry: LayerEntry, from: string) => {
    const existing = entries.get(entry.name);
    if (existing) {
      if (existing.kind === 'dir' && entry.kind === 'dir') return;
      throw new UsageError(
        'image.duplicate-path',
        `two inputs write /${entry.name}: ${origin.get(entry.name)} and ${from}`,
        {
          where: `/${entry.name}`,
          hint: 'give each copy in the image spec a distinct destination',
        },
      );
    }
    entries.set(entry.name, entry);
    origin.set(entry.name, from);
  };

  const roots: string[] = [];
  for (const input of inputs) {
    const name = imagePathToEntryName(input.imagePath);
    if (name === undefined) {
      throw new UsageError(
        'image.bad-path',
        `image path ${JSON.stringify(input.imagePath)} is not a clean absolute path`,
        {
          where: input.imagePath,
          hint: 'use an absolute path without `..`, e.g. /hello.nabla',
        },
      );
    }
    roots.push(name);
    if ('content' in input) {
      if (name === '') throw new UsageError('image.bad-path', 'content cannot be written to /', { where: '/' });
      const content = Buffer.from(input.content);
      add({ kind: 'content', name, mode: input.executable ? EXEC_MODE : FILE_MODE, content }, '(generated content)');
      continue;
    }
    const st = await stat(input.hostPath).catch((cause: unknown) => {
      throw new BuildError('image.input-missing', `cannot read ${input.hostPath} for ${input.imagePath}`, {
        where: input.hostPath,
        cause,
        hint: 'build the artifact first (`nabla-build build <target>`)',
      });
    });
    if (name === '' && st.isFile())
      throw new UsageError('image.bad-path', `a file (${input.hostPath}) cannot be copied to /`, { where: '/' });
    await walk(input.hostPath, name, st, add);
  }

  // A walk adds every directory it passes through, so only the inputs' own paths can lack parents.
  for (const name of roots) {
    for (const parent of ancestors(name)) {
      const existing = entries.get(parent);
      if (!existing) {
        entries.set(parent, { kind: 'dir', name: parent });
      } else if (existing.kind !== 'dir') {
        throw new UsageError('image.path-conflict', `/${parent} is a ${existing.kind} but /${name} is inside it`, {
          where: `/${name}`,
        });
      }
    }
  }
  return [...entries.values()].sort((a, b) => compareNames(a.name, b.name));
}

/**
 * Adds `hostPath` (described by `st`) as entry `name` (the root, `''`, is not an entry), and a directory's
 * contents under it. Synchronous like the layer writer's reads: one thread-pool round trip per file cost more
 * than the walk.
 */
async function walk(
  hostPath: string,
  name: string,
  st: Stats,
  add: (e: LayerEntry, from: string) => void,
): Promise<void> {
  if (st.isSymbolicLink()) {
    const target = readlinkSync(hostPath);
    if (symlinkEscapesRoot(name, target)) {
      throw new BuildError('image.symlink-escape', `symlink /${name} -> ${target} points outside the image root`, {
        where: hostPath,
        hint: 'make the link relative to a path inside the image, or copy the file it points to',
      });
    }
    add({ kind: 'symlink', name, target }, hostPath);
  } else if (st.isDirectory()) {
    if (name !== '') add({ kind: 'dir', name }, hostPath);
    for (const child of readdirSync(hostPath).sort(compareNames)) {
      const path = join(hostPath, child);
      await walk(path, name === '' ? child : `${name}/${child}`, lstatSync(path), add);
    }
  } else if (st.isFile()) {
    add({ kind: 'file', name, size: st.size, mode: normalisedFileMode(st.mode), hostPath }, hostPath);
  } else {
    throw new BuildError('image.unsupported-file', `${hostPath} is not a regular file, directory or symlink`, {
      where: hostPath,
      hint: 'remove sockets, fifos and device nodes from the artifact tree',
    });
  }
}
