import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sha256File } from '@nabla-build/fsio';
import { BuildError, CancelledError, type EntryManifest, type PlanStep, sha256Hex } from '@nabla-build/model';
import {
  ArtifactProblem,
  type ChunkInfo,
  decodeConfig,
  decodeManifest,
  encodeArtifact,
  FORMAT_VERSION,
  type StepConfig,
  type StepManifest,
} from './format.js';
import { DEFAULT_CHUNK_BYTES, extractChunk, listTree, splitChunks, writeChunk } from './pack.js';
import { type CacheTransport, openTransport, type TransportOptions } from './transport.js';

/** What the remote cache reports; the CLI turns these into warnings, progress and `--json`. */
export type RemoteCacheEvent =
  | { type: 'warning'; step?: string; source: string; message: string }
  | { type: 'downloaded'; step: string; source: string; bytes: number }
  | {
      type: 'pushed';
      step: string;
      key: string;
      target: string;
      blobsUploaded: number;
      blobsSkipped: number;
      bytesUploaded: number;
    }
  | { type: 'push-skipped'; step: string; key: string; target: string; reason: string }
  | { type: 'push-failed'; step: string; key: string; target: string; message: string };

export interface StepCacheOptions {
  /** The local cache: downloads and push staging live under `<cacheDir>/tmp`. */
  cacheDir: string;
  /** Sources asked on a local miss, in order. */
  from: string[];
  /** Sinks every completed step is pushed to. */
  to: string[];
  transport?: TransportOptions;
  /** Uncompressed bytes per chunk (default 64 MiB). */
  chunkBytes?: number;
  /** Blobs moved at once per entry (default 4). */
  concurrency?: number;
  /** Entries pushed at once in the background (default 2). */
  pushConcurrency?: number;
  onEvent?: (e: RemoteCacheEvent) => void;
  /** `nabla-build <version>`, recorded in each config blob. */
  createdBy?: string;
  /** Host facts of this run's plan, recorded in each config blob (for `cache prune`). */
  host?: Record<string, unknown>;
}

/** A hit: enough to decide and to report; `fetch` downloads and writes the entry's files. */
export interface RemoteHit {
  source: string;
  /** Compressed bytes of the chunks. */
  bytes: number;
  fetch(into: string, signal: AbortSignal, onBytes?: (n: number) => void): Promise<EntryManifest>;
}

/** Fallback mtime of extracted files when an entry has no source time (1980-01-02, what zip still accepts). */
const FALLBACK_MTIME = 315_619_200;

/**
 * Steps whose entries may move between machines. Fetch steps only record what was resolved (the objects live
 * in the source cache), and steps built outside the canonical build root embed this machine's cache path.
 */
export function shareable(step: PlanStep): boolean {
  if (!step.cacheable || step.kind === 'fetch' || step.kind === 'publish') return false;
  return !(step.kind === 'toolchain' || step.kind === 'package') || step.inputs.host?.buildRoot !== 'host';
}

/**
 * A step cache shared through OCI registries or layout directories. Implements what the engine asks of a
 * remote cache: `lookup` on a local miss, `publish` after a step completes (in the background).
 */
export class StepCache {
  readonly sources: CacheTransport[];
  readonly sinks: CacheTransport[];
  private readonly pending = new Set<Promise<void>>();
  private readonly down = new Set<string>();
  private active = 0;
  private readonly queue: (() => void)[] = [];
  /** Compressed bytes downloaded by lookups and pulls. */
  bytesDownloaded = 0;

  constructor(private readonly opts: StepCacheOptions) {
    const t = { retry: { attempts: 3 }, ...opts.transport };
    this.sources = opts.from.map((r) => openTransport(r, t, '--cache-from'));
    this.sinks = opts.to.map((r) => openTransport(r, t, '--cache-to'));
  }

  shares(step: PlanStep): boolean {
    return shareable(step);
  }

  private emit(e: RemoteCacheEvent): void {
    this.opts.onEvent?.(e);
  }

  /** The first source holding a usable entry for the step; problems are warnings and count as misses. */
  async lookup(step: PlanStep, signal?: AbortSignal): Promise<RemoteHit | undefined> {
    if (!shareable(step)) return undefined;
    for (const source of this.sources) {
      if (this.down.has(source.name)) continue;
      if (signal?.aborted) throw new CancelledError();
      try {
        const found = await readArtifact(source, step.key);
        if (!found) continue;
        return this.hit(step, source, found.manifest, found.config);
      } catch (err) {
        if (err instanceof CancelledError) throw err;
        // An unusable entry is a miss; a cache that cannot be read is not asked again.
        const unusable = err instanceof ArtifactProblem;
        if (!unusable) this.down.add(source.name);
        this.emit({
          type: 'warning',
          step: step.id,
          source: source.name,
          message: unusable
            ? `${source.name} has an unusable entry for ${step.id} (${err.message}): building it here`
            : `cannot read the cache ${source.name} (${(err as Error).message}): not asking it again in this run`,
        });
      }
    }
    return undefined;
  }

  private hit(step: PlanStep, source: CacheTransport, manifest: StepManifest, config: StepConfig): RemoteHit {
    const bytes = manifest.layers.reduce((a, l) => a + l.size, 0);
    return {
      source: source.name,
      bytes,
      fetch: async (into, signal, onBytes) => {
        const dl = join(this.opts.cacheDir, 'tmp', 'remote-cache', step.key.slice(0, 32));
        await mkdir(dl, { recursive: true });
        // Partial downloads (`<hex>.part-<pid>-<rand>`) of processes that are gone; their chunks are fetched again.
        await removeDead(dl, /\.part-(\d+)-/);
        await mkdir(into, { recursive: true });
        let moved = 0;
        await parallel(config.chunks, this.opts.concurrency ?? 4, async (chunk) => {
          if (signal.aborted) throw new CancelledError();
          const file = await this.download(source, chunk, dl, (n) => {
            moved += n;
            this.bytesDownloaded += n;
            onBytes?.(n);
          });
          await extractChunk(file, chunk, into, config.mtime);
        });
        await rm(dl, { recursive: true, force: true });
        this.emit({ type: 'downloaded', step: step.id, source: source.name, bytes: moved });
        return config.entry;
      },
    };
  }

  /**
   * One verified chunk in the download directory. A chunk already there from an interrupted pull is reused
   * when its digest still matches; a transfer that breaks off is retried; a wrong digest is an error.
   */
  private async download(
    source: CacheTransport,
    chunk: ChunkInfo,
    dir: string,
    onBytes: (n: number) => void,
  ): Promise<string> {
    const hex = chunk.digest.slice('sha256:'.length);
    const file = join(dir, hex);
    if (existsSync(file)) {
      if ((await sha256File(file)) === hex) return file;
      await rm(file, { force: true });
    }
    for (let attempt = 1; ; attempt++) {
      const part = `${file}.part-${process.pid}-${randomBytes(4).toString('hex')}`;
      try {
        const stream = await source.getBlob(chunk.digest);
        if (!stream)
          throw new BuildError('remote-cache.blob-missing', `${source.name} lacks chunk ${chunk.digest.slice(0, 19)}`);
        const h = createHash('sha256');
        let n = 0;
        const tap = new Transform({
          transform(c: Buffer, _e, cb) {
            h.update(c);
            n += c.length;
            onBytes(c.length);
            if (n > chunk.size) cb(new Error(`more than the ${chunk.size} bytes announced`));
            else cb(null, c);
          },
        });
        await pipeline(stream, tap, createWriteStream(part, { flags: 'wx' }));
        const got = h.digest('hex');
        if (n !== chunk.size || got !== hex)
          throw new BuildError(
            'remote-cache.digest',
            `chunk ${chunk.digest.slice(0, 19)} from ${source.name} is damaged (got ${n} bytes with sha256:${got.slice(0, 12)}, expected ${chunk.size})`,
          );
        await rename(part, file);
        return file;
      } catch (err) {
        await rm(part, { force: true });
        const retry = !(err instanceof BuildError) && !(err instanceof CancelledError) && attempt < 3;
        if (!retry) throw err;
      }
    }
  }

  /**
   * Pushes a complete local entry to every sink, in the background; never rejects (a failure is a
   * `push-failed` event). `from` names the source the entry was just pulled from: it is not pushed back there.
   */
  publish(step: PlanStep, entryDir: string, entry: EntryManifest, from?: string): void {
    if (!shareable(step)) return;
    for (const sink of this.sinks) {
      if (sink.name === from) continue;
      const p = this.limited(() => this.pushEntry(step, entryDir, entry, sink))
        .then(
          () => undefined,
          (err: unknown) =>
            this.emit({
              type: 'push-failed',
              step: step.id,
              key: step.key,
              target: sink.name,
              message: (err as Error).message ?? String(err),
            }),
        )
        .finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }

  /** Waits for every background push. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= (this.opts.pushConcurrency ?? 2)) await new Promise<void>((r) => this.queue.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.queue.shift()?.();
    }
  }

  /**
   * Pushes one entry to one sink: nothing when the sink already holds a complete entry of this format for the
   * key; otherwise chunks (reproducible tars) are written to a staging directory, each blob is uploaded unless
   * the sink has it, and the manifest is tagged last, so a tag never names missing blobs.
   */
  async pushEntry(
    step: PlanStep,
    entryDir: string,
    entry: EntryManifest,
    sink: CacheTransport,
  ): Promise<{ uploaded: number; skipped: number; bytes: number; present: boolean }> {
    const existing = await readArtifact(sink, step.key).catch((err: unknown) => {
      if (err instanceof ArtifactProblem) return { problem: err };
      throw err;
    });
    if (existing && 'manifest' in existing) {
      const have = await Promise.all(existing.manifest.layers.map((l) => sink.hasBlob(l.digest)));
      if (have.every(Boolean)) {
        this.emit({ type: 'push-skipped', step: step.id, key: step.key, target: sink.name, reason: 'already there' });
        return { uploaded: 0, skipped: existing.manifest.layers.length + 1, bytes: 0, present: true };
      }
    } else if (
      existing &&
      existing.problem.kind === 'incompatible' &&
      (existing.problem.format ?? 0) > FORMAT_VERSION
    ) {
      this.emit({
        type: 'push-skipped',
        step: step.id,
        key: step.key,
        target: sink.name,
        reason: `a newer nabla-build wrote it (format ${existing.problem.format})`,
      });
      return { uploaded: 0, skipped: 0, bytes: 0, present: true };
    }
    const work = join(
      this.opts.cacheDir,
      'tmp',
      `remote-push-${step.key.slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`,
    );
    // Chunk staging directories (`remote-push-<key>-<pid>-<rand>`) of killed pushes.
    await removeDead(join(this.opts.cacheDir, 'tmp'), /^remote-push-[0-9a-f]+-(\d+)-/);
    await mkdir(work, { recursive: true });
    let uploaded = 0;
    let skipped = 0;
    let bytes = 0;
    const send = async (digest: string, file: string, size: number) => {
      if (await sink.hasBlob(digest)) {
        skipped++;
        return;
      }
      await sink.putBlob(digest, file, size);
      uploaded++;
      bytes += size;
    };
    try {
      const tree = listTree(entryDir);
      const mtime = sourceTime(entry.result);
      const uploads: Promise<void>[] = [];
      const chunks: ChunkInfo[] = [];
      let inFlight = 0;
      const slots: (() => void)[] = [];
      let failed = false;
      for (const part of splitChunks(tree, this.opts.chunkBytes ?? DEFAULT_CHUNK_BYTES)) {
        if (failed) break;
        const c = await writeChunk(part, work, mtime);
        chunks.push(c);
        if (inFlight >= (this.opts.concurrency ?? 4)) await new Promise<void>((r) => slots.push(r));
        inFlight++;
        const file = join(work, c.digest.slice('sha256:'.length));
        const upload = send(c.digest, file, c.size)
          .then(() => rm(file, { force: true }))
          .finally(() => {
            inFlight--;
            slots.shift()?.();
          });
        // Observed at once (an upload may fail while later chunks are still being written); rethrown below.
        upload.catch(() => {
          failed = true;
        });
        uploads.push(upload);
      }
      await Promise.all(uploads);
      const config: StepConfig = {
        format: FORMAT_VERSION,
        key: step.key,
        step: step.id,
        kind: step.kind,
        subject: step.subject,
        entry,
        mtime,
        tree: {
          entries: tree.length,
          bytes: tree.reduce((a, e) => a + (e.kind === 'file' ? e.size : 0), 0),
        },
        chunks,
        createdBy: this.opts.createdBy ?? 'nabla-build',
        ...(this.opts.host ? { host: this.opts.host } : {}),
      };
      const art = encodeArtifact(config);
      const configFile = join(work, 'config.json');
      await writeFile(configFile, art.config.bytes);
      await send(art.config.digest, configFile, art.config.bytes.length);
      await sink.putManifest(step.key, art.manifest.bytes, art.manifest.digest);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    this.emit({
      type: 'pushed',
      step: step.id,
      key: step.key,
      target: sink.name,
      blobsUploaded: uploaded,
      blobsSkipped: skipped,
      bytesUploaded: bytes,
    });
    return { uploaded, skipped, bytes, present: false };
  }
}

/** The manifest and config of the entry tagged `key`, verified; undefined when there is none. */
export async function readArtifact(t: CacheTransport, key: string) {
  const bytes = await t.getManifest(key);
  if (!bytes) return undefined;
  const manifest = decodeManifest(bytes, key);
  const config = await readSmallBlob(t, manifest.config.digest, manifest.config.size);
  return { manifest, config: decodeConfig(config, manifest, key) };
}

/** A small blob (a config), verified; a transfer that breaks off is retried (the client retries statuses). */
async function readSmallBlob(t: CacheTransport, digest: string, size: number): Promise<Buffer> {
  if (!Number.isSafeInteger(size) || size < 0 || size > 64 * 1024 * 1024)
    throw new ArtifactProblem('invalid', `its config blob has an implausible size (${size})`);
  for (let attempt = 1; ; attempt++) {
    try {
      const stream = await t.getBlob(digest);
      if (!stream) throw new ArtifactProblem('invalid', 'its config blob is missing');
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of stream) {
        n += (c as Buffer).length;
        if (n > size) throw new ArtifactProblem('invalid', 'its config blob is larger than announced');
        chunks.push(c as Buffer);
      }
      if (n < size) throw new Error(`the transfer stopped after ${n} of ${size} bytes`);
      const blob = Buffer.concat(chunks);
      if (`sha256:${sha256Hex(blob)}` !== digest)
        throw new ArtifactProblem('invalid', 'its config blob does not match its digest');
      return blob;
    } catch (err) {
      if (err instanceof ArtifactProblem || err instanceof CancelledError || err instanceof BuildError || attempt >= 3)
        throw err;
    }
  }
}

function sourceTime(result: unknown): number {
  const e = (result as { sourceEpoch?: unknown } | null)?.sourceEpoch;
  return typeof e === 'number' && Number.isInteger(e) && e > FALLBACK_MTIME ? e : FALLBACK_MTIME;
}

async function parallel<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  let failed: unknown;
  const worker = async () => {
    for (let it = queue.shift(); it !== undefined && failed === undefined; it = queue.shift()) {
      try {
        await fn(it);
      } catch (err) {
        failed ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(n, items.length)) }, worker));
  if (failed !== undefined) throw failed;
}

/** Removes the names in `dir` whose `pattern` group 1 is the pid of a process that is gone. */
async function removeDead(dir: string, pattern: RegExp): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const m = pattern.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = pid === process.pid;
    if (!alive)
      try {
        process.kill(pid, 0);
        alive = true;
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code !== 'ESRCH';
      }
    if (!alive) await rm(join(dir, name), { recursive: true, force: true });
  }
}
