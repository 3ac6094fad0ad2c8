import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BuildError, CancelledError, type PinProvenance, type TarballSourceSpec, UsageError } from '@nabla-build/model';
import { downloadPath } from './cache.js';
import { offlineError, SHA256_HEX, type SourceContext } from './context.js';
import { pathExists as exists, removeStaleTemps, sha256File, tempSibling, writeFileAtomic } from '@nabla-build/fsio';
import { localPath, resolveMirror } from './mirror-rules.js';

export interface TarballFetchResult {
  /** `<cacheDir>/downloads/<sha256>/<file>`, verified. */
  path: string;
  sha256: string;
  /** The recipe URL that was used (before mirror rules); undefined when the file came from the cache. */
  url?: string;
  /** Where it was actually read from (after mirror rules). */
  fetchedFrom?: string;
  cached: boolean;
  bytesFetched: number;
  /** Failed attempts before the successful one (`<url>: HTTP 404`, ...). */
  failures: string[];
}

interface Meta {
  file: string;
  size: number;
  sha256: string;
  url: string;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/**
 * Returns the verified tarball of `spec` from the cache, or downloads it: each URL in order (after mirror rules;
 * `file://` and local paths are read from disk), to a temp file, sha256 checked, then renamed into
 * `<cacheDir>/downloads/<sha256>/<file>`. A file with the wrong digest is never cached. A cached file is
 * re-verified (size and sha256) before use and fetched again when it does not match.
 */
export async function fetchTarball(
  spec: TarballSourceSpec,
  ctx: SourceContext,
  pins: PinProvenance = { overridden: [], moved: [] },
): Promise<TarballFetchResult> {
  const urls = spec.urls;
  const sha256 = spec.sha256.toLowerCase();
  if (!SHA256_HEX.test(sha256)) {
    throw new UsageError('source.sha256-invalid', `source ${spec.name}: sha256 \`${sha256}\` is not 64 hex digits`, {
      where: pins.overridden.includes(spec.name) ? `override of ${spec.name}` : spec.name,
    });
  }
  if (!spec.file || spec.file !== basename(spec.file) || spec.file.startsWith('.')) {
    throw new UsageError(
      'source.file-invalid',
      `source ${spec.name}: file \`${spec.file}\` must be a plain file name`,
      { where: spec.name },
    );
  }
  if (urls.length === 0) throw new UsageError('source.no-url', `source ${spec.name} has no URL`, { where: spec.name });
  const path = downloadPath(ctx.cacheDir, sha256, spec.file);
  const metaPath = join(dirname(path), `.${spec.file}.meta.json`);

  if (await exists(path)) {
    const problem = await verifyCached(path, metaPath, sha256);
    if (!problem) return { path, sha256, cached: true, bytesFetched: 0, failures: [] };
    ctx.onProgress?.(`${spec.name}: cached ${path} is damaged (${problem}); fetching it again`);
    await rm(path, { force: true });
    await rm(metaPath, { force: true });
  }

  const rules = ctx.mirrors ?? [];
  const allowLocal = ctx.allowLocal ?? false;
  const targets = urls.map((u) => ({ url: u, from: resolveMirror(u, rules, { allowLocal }) }));
  if (ctx.offline) throw offlineError(ctx, spec.name, targets[0]?.from.url ?? urls[0] ?? '');

  await mkdir(dirname(path), { recursive: true });
  await removeStaleTemps(join(dirname(path), `.${spec.file}`));
  const failures: string[] = [];
  const mismatches: { url: string; actual: string }[] = [];
  for (const t of targets) {
    if (ctx.signal?.aborted) throw new CancelledError(`download of ${spec.name} cancelled`);
    const tmp = tempSibling(join(dirname(path), `.${spec.file}`));
    ctx.onProgress?.(`${spec.name}: downloading ${t.from.url}`);
    try {
      const got = t.from.local
        ? await saveHashed(createReadStream(localPath(t.from.url)), tmp)
        : await download(t.from.url, tmp, ctx.httpTimeoutMs ?? DEFAULT_TIMEOUT_MS, ctx.signal);
      if (got.sha256 !== sha256) {
        mismatches.push({ url: t.from.url, actual: got.sha256 });
        failures.push(`${t.from.url}: sha256 ${got.sha256} (expected ${sha256})`);
        await rm(tmp, { force: true });
        continue;
      }
      const meta: Meta = { file: spec.file, size: got.size, sha256, url: t.url };
      await writeFileAtomic(metaPath, `${JSON.stringify(meta)}\n`);
      await rename(tmp, path);
      return { path, sha256, url: t.url, fetchedFrom: t.from.url, cached: false, bytesFetched: got.size, failures };
    } catch (e) {
      await rm(tmp, { force: true });
      if (e instanceof CancelledError || ctx.signal?.aborted)
        throw new CancelledError(`download of ${spec.name} cancelled`);
      failures.push(`${t.from.url}: ${describe(e)}`);
    }
  }
  const first = mismatches[0];
  if (first) {
    throw new BuildError(
      'source.checksum',
      `source ${spec.name}: ${first.url} served ${spec.file} with sha256 ${first.actual}, expected ${sha256}` +
        (failures.length > 1 ? ` (all attempts: ${failures.join('; ')})` : ''),
      {
        where: first.url,
        hint: 'nothing was cached. If upstream re-released the file on purpose, check it and update sha256 in the recipe; otherwise use another mirror (--mirror)',
      },
    );
  }
  throw new BuildError(
    'source.download-failed',
    `source ${spec.name}: could not download ${spec.file}: ${failures.join('; ')}`,
    {
      where: targets[0]?.from.url ?? '',
      hint: 'add a working URL with a mirror rule (--mirror <prefix>=<replacement> or NABLA_BUILD_MIRRORS)',
    },
  );
}

async function verifyCached(path: string, metaPath: string, sha256: string): Promise<string | undefined> {
  let meta: Meta | undefined;
  try {
    meta = JSON.parse(await readFile(metaPath, 'utf8')) as Meta;
  } catch {
    meta = undefined;
  }
  const size = (await stat(path)).size;
  if (meta && meta.size !== size) return `size ${size}, expected ${meta.size}`;
  const actual = await sha256File(path);
  if (actual !== sha256) return `sha256 ${actual}`;
  if (!meta) await writeFileAtomic(metaPath, `${JSON.stringify({ file: basename(path), size, sha256, url: '' })}\n`);
  return undefined;
}

/** Writes `source` to the new file `tmp`, hashing it on the way; `onChunk` is called for every chunk. */
async function saveHashed(source: Readable, tmp: string, onChunk?: () => void, signal?: AbortSignal) {
  const h = createHash('sha256');
  let size = 0;
  await pipeline(
    source,
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) {
        onChunk?.();
        h.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    },
    createWriteStream(tmp, { flags: 'wx' }),
    signal ? { signal } : {},
  );
  return { sha256: h.digest('hex'), size };
}

class TimeoutError extends Error {}

async function download(url: string, tmp: string, idleMs: number, signal: AbortSignal | undefined) {
  if (!/^https?:\/\//i.test(url))
    throw new Error(`unsupported URL scheme (only http, https, file:// and absolute paths)`);
  const idle = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new TimeoutError(`no data for ${Math.round(idleMs / 1000)} s`)), idleMs);
  };
  const combined = signal ? AbortSignal.any([signal, idle.signal]) : idle.signal;
  arm();
  try {
    const res = await fetch(url, { redirect: 'follow', signal: combined });
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new Error(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
    }
    const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
    return await saveHashed(body, tmp, arm, combined);
  } catch (e) {
    if (idle.signal.aborted && !signal?.aborted) throw idle.signal.reason;
    throw e;
  } finally {
    if (timer) clearTimeout(timer);
  }
}

function describe(e: unknown): string {
  if (e instanceof TimeoutError) return `timed out (${e.message})`;
  if (e instanceof Error) {
    const cause = (e as Error & { cause?: unknown }).cause;
    if (cause instanceof Error) {
      const code = (cause as NodeJS.ErrnoException).code;
      return code ? `${code} (${cause.message})` : cause.message;
    }
    const code = (e as NodeJS.ErrnoException).code;
    return code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}
