/**
 * Registering an OCI runtime with Docker: merge `runtimes.<name>` into daemon.json, keeping every other key,
 * with a backup and an atomic write. dockerd picks the change up on SIGHUP.
 */
import { copyFile, constants as fsConstants, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { writeFileAtomic } from '@nabla-build/fsio';
import { InputFileError, UsageError } from '@nabla-build/model';
import { locateJsonError } from './json-location.js';

export const DEFAULT_DAEMON_JSON = '/etc/docker/daemon.json';
export const DEFAULT_RUNTIME_NAME = 'runnc';
export const DEFAULT_RUNTIME_PATH = '/opt/runnc/bin/runnc';

/** How to make a running dockerd read the new runtimes. */
export const DOCKERD_RELOAD_HINT = 'kill -HUP $(pidof dockerd)   (or: systemctl reload docker)';

export interface RegisterRuntimeOptions {
  /** The daemon config file; default `/etc/docker/daemon.json`. */
  daemonJson?: string;
  /** Runtime name for `docker run --runtime=<name>`; default `runnc`. */
  name?: string;
  /** Absolute path of the runtime binary; default `/opt/runnc/bin/runnc`. */
  path?: string;
  /** Clock for the backup name (tests). */
  now?: Date;
}

export interface RegisterRuntimeResult {
  /** `created`: the file did not exist; `updated`: it changed; `unchanged`: it already had this entry. */
  status: 'created' | 'updated' | 'unchanged';
  file: string;
  /** The copy of the previous file, when one was made. */
  backup?: string;
  /** `runtimes.<name>` before the change, when there was one. */
  previous?: Record<string, unknown>;
  /** `runtimes.<name>` as written. */
  entry: Record<string, unknown>;
  /** One line per changed field, e.g. `runtimes.runnc.path: (absent) -> /opt/runnc/bin/runnc`. */
  changes: string[];
  /** The command that makes dockerd reload, when something changed. */
  reloadHint?: string;
}

/** Adds or updates `runtimes.<name>` in daemon.json; idempotent, with a backup before any change. */
export async function registerRuntime(opts: RegisterRuntimeOptions = {}): Promise<RegisterRuntimeResult> {
  const file = opts.daemonJson ?? DEFAULT_DAEMON_JSON;
  const name = opts.name ?? DEFAULT_RUNTIME_NAME;
  const path = opts.path ?? DEFAULT_RUNTIME_PATH;
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) {
    throw new UsageError('runtime.invalid-name', `runtime name \`${name}\` is not a plain name (A-Za-z0-9_.-)`);
  }
  if (!isAbsolute(path)) {
    throw new UsageError('runtime.invalid-path', `runtime path \`${path}\` is not absolute`, {
      hint: `pass the installed binary, e.g. ${DEFAULT_RUNTIME_PATH}`,
    });
  }

  let original: Buffer | undefined;
  let mode = 0o644;
  try {
    original = await readFile(file);
    mode = (await stat(file)).mode & 0o7777;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const config = original === undefined ? {} : parseDaemonJson(original.toString('utf8'), file);

  const runtimesRaw = config.runtimes;
  if (runtimesRaw !== undefined && !isPlainObject(runtimesRaw)) {
    throw fieldError(file, original, 'runtimes', 'must be an object of runtime entries');
  }
  const runtimes: Record<string, unknown> = { ...(runtimesRaw ?? {}) };
  const prevRaw = runtimes[name];
  if (prevRaw !== undefined && !isPlainObject(prevRaw)) {
    throw fieldError(file, original, `runtimes.${name}`, 'must be an object like {"path": "..."}');
  }
  const previous = prevRaw as Record<string, unknown> | undefined;
  // Every other field of an existing entry (`runtimeArgs`...) is kept as it is.
  const entry: Record<string, unknown> = { ...previous, path };

  const changes: string[] = [];
  for (const key of new Set([...Object.keys(previous ?? {}), ...Object.keys(entry)])) {
    const before = previous?.[key];
    const after = entry[key];
    if (JSON.stringify(before) !== JSON.stringify(after)) {
      changes.push(`runtimes.${name}.${key}: ${show(before)} -> ${show(after)}`);
    }
  }
  const base = { file, entry, changes, ...(previous ? { previous } : {}) };
  if (original !== undefined && changes.length === 0) return { status: 'unchanged', ...base };

  runtimes[name] = entry;
  const next = { ...config, runtimes };
  let backup: string | undefined;
  if (original === undefined) {
    await mkdir(dirname(file), { recursive: true });
  } else {
    backup = await writeBackup(file, opts.now ?? new Date());
  }
  await writeFileAtomic(file, `${JSON.stringify(next, null, 2)}\n`, { mode });
  return {
    status: original === undefined ? 'created' : 'updated',
    ...base,
    ...(backup ? { backup } : {}),
    reloadHint: DOCKERD_RELOAD_HINT,
  };
}

/** Parses daemon.json; an empty file counts as `{}`. Malformed text → InputFileError with line and column. */
export function parseDaemonJson(text: string, file: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  const loc = locateJsonError(text);
  if (loc) {
    throw new InputFileError(
      file,
      loc.line,
      undefined,
      `malformed JSON at column ${loc.column}: ${loc.problem}`,
      `fix ${file} by hand (dockerd would refuse it too), then rerun`,
    );
  }
  const value: unknown = JSON.parse(text);
  if (!isPlainObject(value)) {
    throw new InputFileError(file, 1, undefined, 'must be a JSON object', `fix ${file} by hand, then rerun`);
  }
  return value;
}

function fieldError(file: string, original: Buffer | undefined, field: string, problem: string): InputFileError {
  const key = field.split('.').pop() as string;
  const text = original?.toString('utf8') ?? '';
  const at = text.indexOf(`"${key}"`);
  const line = at < 0 ? undefined : text.slice(0, at).split('\n').length;
  return new InputFileError(file, line, field, problem, `fix ${file} by hand, then rerun`);
}

async function writeBackup(file: string, now: Date): Promise<string> {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  for (let n = 0; ; n++) {
    const candidate = `${file}.bak-${stamp}${n === 0 ? '' : `-${n}`}`;
    try {
      await copyFile(file, candidate, fsConstants.COPYFILE_EXCL);
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? '(absent)' : typeof v === 'string' ? v : JSON.stringify(v);
}
