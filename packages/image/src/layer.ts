import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';
import { createHash, type Hash } from 'node:crypto';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { constants as zc, crc32, deflateRaw } from 'node:zlib';
import { BuildError, UsageError } from '@nabla-build/model';
import { GZIP_BLOCK_LEVEL, type LayerCompression, levelOf, zstdProgramVersion } from './layer-format.js';
import { MediaType } from './media-types.js';
import { END_OF_TAR, encodeTarHeader, tarPadding } from './tar.js';
import type { LayerEntry } from './tree.js';

/**
 * A layer larger than SINGLE_STREAM_MAX is cut into blocks of exactly this many bytes, compressed in parallel
 * (`GzipBlocks`). Fixed, so the bytes never depend on the number of cores.
 */
export const GZIP_BLOCK = 1024 * 1024;
/**
 * A layer of at most this many bytes (as tar) is one deflate stream, byte-identical to a one-shot `gzip` of the
 * tar, as layers were before blocks: small images (every fixture image of the tests, ≈0.8–1.1 MB) keep their
 * digests. Parallel blocks pay off above it.
 */
export const SINGLE_STREAM_MAX = 4 * GZIP_BLOCK;
const WINDOW = 32 * 1024;

const MEDIA_TYPES: Record<LayerCompression, string> = {
  gzip: MediaType.ociLayerGzip,
  zstd: MediaType.ociLayerZstd,
  none: MediaType.ociLayer,
};

export interface WrittenLayer {
  mediaType: string;
  /** Digest of the blob as stored (compressed). */
  digest: string;
  size: number;
  /** Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffId: string;
  uncompressedSize: number;
}

/**
 * Layer data held in memory at once, whatever the layer's size: the block being filled, the first 4 MiB held
 * until the layer is known to be larger (then compressed as its first blocks), the blocks being compressed (at
 * most `inflight`, each with its output) and one 32 KiB window — at most 4 MiB + (inflight + 1) × 2 MiB +
 * 1 MiB: at most 15 MiB with the default of min(cores + 1, 4) blocks in flight.
 */
export function layerMemoryBound(): number {
  return SINGLE_STREAM_MAX + (defaultInflight() + 1) * 2 * GZIP_BLOCK + GZIP_BLOCK;
}

/**
 * One block more than there are cores, so the cores stay busy while the main thread writes a finished block
 * and fills the next; at most 4, the thread pool's default size.
 */
function defaultInflight(): number {
  return Math.max(2, Math.min(availableParallelism() + 1, 4));
}

/**
 * Writes `entries` as one tar layer into `blobsDir` (already sorted and normalised by `collectEntries`).
 * The tar is built straight into 1 MiB blocks (file bodies are read into them), each block is hashed
 * (diff_id), compressed — gzip on the thread pool, several blocks at once; zstd by the `zstd` program — and
 * the output hashed (digest) and written as it comes, so memory stays within `layerMemoryBound()` whatever the
 * layer's size. Every entry gets uid/gid 0, empty owner names and `mtime`.
 */
export async function writeLayer(
  entries: readonly LayerEntry[],
  blobsDir: string,
  opts: { mtime: Date; compression: LayerCompression; level?: number },
): Promise<WrittenLayer> {
  const tmp = join(blobsDir, `.layer-${process.pid}-${Date.now()}.tmp`);
  const fd = openSync(tmp, 'w');
  const out = new Output(fd);
  const sink: BlockSink =
    opts.compression === 'gzip'
      ? new GzipBlocks(out, levelOf(opts), opts.level ?? GZIP_BLOCK_LEVEL, tarAtLeast(entries))
      : opts.compression === 'zstd'
        ? new ZstdProgram(out, levelOf(opts))
        : out;
  const tarOut = new TarBlocks(sink);
  try {
    await writeTar(tarOut, entries, Math.floor(opts.mtime.getTime() / 1000));
    await tarOut.end();
  } catch (err) {
    await sink.abort?.();
    closeSync(fd);
    await rm(tmp, { force: true });
    if (err instanceof BuildError || err instanceof UsageError) throw err;
    throw new BuildError('image.layer-failed', `writing the image layer failed: ${(err as Error).message}`, {
      where: blobsDir,
      cause: err,
    });
  }
  closeSync(fd);
  const digest = `sha256:${out.hash.digest('hex')}`;
  await rename(tmp, join(blobsDir, digest.slice('sha256:'.length)));
  return {
    mediaType: MEDIA_TYPES[opts.compression],
    digest,
    size: out.bytes,
    diffId: `sha256:${tarOut.hash.digest('hex')}`,
    uncompressedSize: tarOut.bytes,
  };
}

/** Bytes the tar of `entries` has at least: a 512-byte header per entry and the padded file bodies. */
function tarAtLeast(entries: readonly LayerEntry[]): number {
  let n = 0;
  for (const e of entries) {
    const size = e.kind === 'file' ? e.size : e.kind === 'content' ? e.content.length : 0;
    n += 512 + size + tarPadding(size);
  }
  return n;
}

async function writeTar(tarOut: TarBlocks, entries: readonly LayerEntry[], mtime: number): Promise<void> {
  for (const e of entries) {
    switch (e.kind) {
      case 'dir':
        await tarOut.put(encodeTarHeader({ name: `${e.name}/`, type: 'directory', mode: 0o755, size: 0, mtime }));
        break;
      case 'symlink':
        await tarOut.put(
          encodeTarHeader({ name: e.name, type: 'symlink', mode: 0o777, size: 0, mtime, linkname: e.target }),
        );
        break;
      case 'content':
        await tarOut.put(encodeTarHeader({ name: e.name, type: 'file', mode: e.mode, size: e.content.length, mtime }));
        await tarOut.put([e.content, END_OF_TAR.subarray(0, tarPadding(e.content.length))]);
        break;
      case 'file': {
        await tarOut.put(encodeTarHeader({ name: e.name, type: 'file', mode: e.mode, size: e.size, mtime }));
        try {
          // Read straight into the layer's blocks, synchronously: an async read is a thread-pool round trip
          // per call, which dominated assembly of a 20,000-file tree; a read from the page cache takes
          // microseconds.
          await tarOut.putFile(e.hostPath, e.size);
        } catch (cause) {
          // A failure of the compressor while the file was read is the layer's, reported by writeLayer.
          if (!(cause instanceof ReadFailed)) throw cause;
          throw new BuildError(
            'image.input-changed',
            `reading ${e.hostPath} into /${e.name} failed (did it change during assembly?)`,
            { where: e.hostPath, cause },
          );
        }
        await tarOut.put([END_OF_TAR.subarray(0, tarPadding(e.size))]);
        break;
      }
    }
  }
  await tarOut.put([END_OF_TAR]);
}

/** Where full blocks of the uncompressed tar go, in order. `last` is set on the final block only. */
interface BlockSink {
  /** `release(data)` hands the block back for reuse once the sink is done with it (optional). */
  block(data: Buffer, last: boolean, release: (b: Buffer) => void, bodies?: readonly number[]): Promise<void>;
  abort?(): Promise<void>;
}

/** Collects the tar into blocks of exactly GZIP_BLOCK bytes (the last one shorter), hashing it (diff_id). */
class TarBlocks {
  readonly hash = createHash('sha256');
  bytes = 0;
  private buf: Buffer = Buffer.allocUnsafe(GZIP_BLOCK);
  private pos = 0;
  /** Where file bodies of at least MIN_STORED bytes lie in the current block: [start, end) pairs. */
  private bodies: number[] = [];
  /** Blocks the sink is done with: reused, so a long layer makes no garbage for the GC to catch up on. */
  private readonly spare: Buffer[] = [];
  private readonly release = (b: Buffer) => {
    if (b.length === GZIP_BLOCK && this.spare.length < 8) this.spare.push(b);
  };

  constructor(private readonly sink: BlockSink) {}

  /** A full block is handed on only when more data follows, so the sink knows which block is the last. */
  private async room(): Promise<void> {
    if (this.pos < GZIP_BLOCK) return;
    const full = this.buf;
    this.buf = this.spare.pop() ?? Buffer.allocUnsafe(GZIP_BLOCK);
    const bodies = this.bodies;
    this.pos = 0;
    this.bodies = [];
    this.hash.update(full);
    await this.sink.block(full, false, this.release, bodies);
  }

  async put(parts: readonly Buffer[]): Promise<void> {
    for (const p of parts) {
      let off = 0;
      while (off < p.length) {
        await this.room();
        const n = Math.min(p.length - off, GZIP_BLOCK - this.pos);
        p.copy(this.buf, this.pos, off, off + n);
        this.pos += n;
        off += n;
      }
      this.bytes += p.length;
    }
  }

  async putFile(path: string, size: number): Promise<void> {
    const fd = reading(() => openSync(path, 'r'));
    try {
      let left = size;
      // One byte more than the file should have is asked for where it fits: a short read is its end, so
      // the read that proves the file did not grow is needed only when the body ends where a block does.
      let atEnd = false;
      while (left > 0) {
        await this.room();
        const ask = Math.min(left + 1, GZIP_BLOCK - this.pos);
        const n = reading(() => readSync(fd, this.buf, this.pos, ask, null));
        if (n === 0) throw new ReadFailed(`size changed from ${size} to ${size - left} bytes`);
        if (n > left) throw new ReadFailed(`size changed: more than ${size} bytes`);
        atEnd = n < ask;
        if (size >= MIN_STORED) {
          if (this.bodies.at(-1) === this.pos) this.bodies.pop();
          else this.bodies.push(this.pos);
          this.bodies.push(this.pos + n);
        }
        this.pos += n;
        left -= n;
      }
      if (!atEnd && reading(() => readSync(fd, Buffer.allocUnsafe(1), 0, 1, null)) !== 0)
        throw new ReadFailed(`size changed: more than ${size} bytes`);
    } finally {
      closeSync(fd);
    }
    this.bytes += size;
  }

  async end(): Promise<void> {
    const last = this.buf.subarray(0, this.pos);
    this.hash.update(last);
    await this.sink.block(last, true, this.release, this.bodies);
  }
}

/** A host file that could not be read as its entry says (not a failure of the compressor between reads). */
class ReadFailed extends Error {}

function reading<T>(read: () => T): T {
  try {
    return read();
  } catch (cause) {
    throw new ReadFailed((cause as Error).message, { cause });
  }
}

/** The blob file: hashed (digest) and counted as written. Also the sink of uncompressed layers. */
class Output implements BlockSink {
  readonly hash: Hash = createHash('sha256');
  bytes = 0;
  constructor(private readonly fd: number) {}

  write(data: Buffer): void {
    this.hash.update(data);
    let off = 0;
    while (off < data.length) off += writeSync(this.fd, data, off, data.length - off);
    this.bytes += data.length;
  }

  async block(data: Buffer, _last: boolean, release: (b: Buffer) => void): Promise<void> {
    this.write(data);
    release(data);
  }
}

/**
 * One gzip member made of independently compressed blocks (pigz's scheme): block i is raw deflate of the
 * block primed with the last 32 KiB of block i−1, ended by a sync flush (the final block by Z_FINISH), so
 * any gzip reader sees a single ordinary deflate stream. Up to `inflight` blocks compress on the thread pool
 * at once; outputs are written in order. Header and trailer are zlib's (no name, mtime 0, OS unix), and a
 * layer of at most SINGLE_STREAM_MAX is one stream, so it is byte-identical to `gzipSync(tar, { level })`.
 */
class GzipBlocks implements BlockSink {
  private readonly pending: { input: Buffer; parts: (Buffer | Promise<Buffer>)[] }[] = [];
  private readonly inflight = defaultInflight();
  /** Blocks held back until the layer is known to be larger than SINGLE_STREAM_MAX, with their file bodies. */
  private held: [Buffer, readonly number[] | undefined][] = [];
  private blocks: boolean;
  private crc = 0;
  private size = 0;
  private dict: Buffer | undefined;

  constructor(
    private readonly out: Output,
    private readonly level: number,
    private readonly blockLevel: number,
    /** A lower bound of the tar's size: above SINGLE_STREAM_MAX, blocks compress from the first (same bytes). */
    tarAtLeast: number,
  ) {
    this.blocks = tarAtLeast > SINGLE_STREAM_MAX;
    const xfl = level === 9 ? 2 : level < 2 ? 4 : 0; // as zlib writes it, for the single-stream case
    out.write(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]));
  }

  async block(data: Buffer, last: boolean, release: (b: Buffer) => void, bodies?: readonly number[]): Promise<void> {
    this.crc = crc32(data, this.crc);
    this.size += data.length;
    if (!this.blocks) {
      if (!last && this.size <= SINGLE_STREAM_MAX) {
        this.held.push([data, bodies]);
        return;
      }
      const held = this.held;
      this.held = [];
      if (last && this.size <= SINGLE_STREAM_MAX) {
        this.pending.push({
          input: data,
          parts: [deflatePiece(Buffer.concat([...held.map((h) => h[0]), data]), this.level, true)],
        });
        for (const [b] of held) release(b);
        await this.drain(0, release);
        return this.trailer();
      }
      this.blocks = true;
      for (const [b, r] of held) await this.compressBlock(b, false, release, r);
    }
    await this.compressBlock(data, last, release, bodies);
    if (last) this.trailer();
  }

  /**
   * Runs of random-looking file bodies (`storedRuns`) become stored deflate blocks, written here without zlib;
   * each piece between them is deflated on the thread pool, primed with the (up to) 32 KiB before it and ended
   * by a sync flush (the layer's last by Z_FINISH).
   */
  private async compressBlock(
    data: Buffer,
    last: boolean,
    release: (b: Buffer) => void,
    bodies: readonly number[] = [],
  ): Promise<void> {
    const prev = this.dict;
    this.dict = last ? undefined : Buffer.from(data.subarray(Math.max(0, data.length - WINDOW)));
    const parts: (Buffer | Promise<Buffer>)[] = [];
    let from = 0;
    const deflateTo = (to: number, final: boolean) => {
      const dictionary = from ? data.subarray(Math.max(0, from - WINDOW), from) : prev;
      if (to > from || final) parts.push(deflatePiece(data.subarray(from, to), this.blockLevel, final, dictionary));
    };
    for (const [a, z] of storedRuns(data, bodies)) {
      deflateTo(a, false);
      parts.push(...storedBlocks(data.subarray(a, z), last && z === data.length));
      from = z;
    }
    if (from < data.length || (last && parts.length === 0)) deflateTo(data.length, last);
    this.pending.push({ input: data, parts });
    await this.drain(last ? 0 : this.inflight - 1, release);
  }

  /** Writes finished outputs, in order, until at most `keep` blocks are still compressing. */
  private async drain(keep: number, release: (b: Buffer) => void): Promise<void> {
    while (this.pending.length > keep) {
      const done = this.pending.shift() as { input: Buffer; parts: (Buffer | Promise<Buffer>)[] };
      for (const part of done.parts) this.out.write(await part);
      release(done.input);
    }
  }

  private trailer(): void {
    const trailer = Buffer.alloc(8);
    trailer.writeUInt32LE(this.crc >>> 0, 0);
    trailer.writeUInt32LE(this.size % 2 ** 32, 4);
    this.out.write(trailer);
  }

  async abort(): Promise<void> {
    await Promise.allSettled(this.pending.flatMap((p) => p.parts));
  }
}

/** File bodies shorter than this are deflated whatever they hold. */
const MIN_STORED = 4096;
/**
 * Stored runs shorter than this are deflated after all: each run costs one more deflate call (≈0.2 ms of zlib
 * set-up, as much as deflating 10 KiB of random bytes at level 4) and one more thread-pool round trip.
 */
const MIN_RUN = 16 * 1024;

/**
 * The stretches of a block to store rather than deflate: file bodies (`bodies`, [start, end) pairs) that look
 * random or already compressed — collision entropy above 7.9 bits per byte in 4,096 sampled bytes (512 first:
 * text stops there), where text is at 4–5, bytecode and machine code at 5–6.5, gzip or random data at 7.95–8;
 * deflate at any level saves < 0.5 % on them and costs as much CPU as on text — joined across the ≤ 2 KiB of
 * headers and padding between them, if at least MIN_RUN long. Go's and zstd's compressors skip such data too.
 * A function of the bytes only: deterministic.
 */
export function storedRuns(data: Buffer, bodies: readonly number[]): [number, number][] {
  const runs: [number, number][] = [];
  for (let i = 0; i < bodies.length; i += 2) {
    const a = bodies[i] as number;
    const z = bodies[i + 1] as number;
    if (z - a < MIN_STORED || entropyBits(data, a, z, 512) < 7 || entropyBits(data, a, z, 4096) < 7.9) continue;
    const prev = runs.at(-1);
    if (prev && a - prev[1] <= 2048) prev[1] = z;
    else runs.push([a, z]);
  }
  return runs.filter(([a, z]) => z - a >= MIN_RUN);
}

const counts = new Int32Array(256);
/**
 * Collision (Rényi-2) entropy in bits per byte, estimated without bias from `samples` bytes of data[a, z) taken
 * as runs of 256 contiguous bytes spread evenly (single bytes at a fixed stride can alias with a periodic
 * structure and see only its random half).
 */
function entropyBits(data: Buffer, a: number, z: number, samples: number): number {
  const n = Math.min(samples, z - a) & ~255;
  const runs = n >> 8;
  counts.fill(0);
  for (let r = 0; r < runs; r++) {
    const start = a + Math.floor(((z - a - 256) * r) / Math.max(1, runs - 1));
    for (let i = start; i < start + 256; i++) (counts[data[i] as number] as number)++;
  }
  let pairs = 0;
  for (let b = 0; b < 256; b++) pairs += (counts[b] as number) * ((counts[b] as number) - 1);
  return -Math.log2(Math.max(pairs, 1) / (n * (n - 1)));
}

/**
 * Raw deflate of `input`: the layer's end if `final`, else ended by a sync flush. The output buffer is half the
 * input: a piece that compresses to at most that (random-looking bodies are stored, not deflated) takes one
 * thread-pool round trip, and the blocks in flight do not each hold an input-sized buffer (at 250 MB: 13 MiB
 * less peak RSS, fewer collections; the bytes are the same whatever the buffer).
 */
function deflatePiece(input: Buffer, level: number, final: boolean, dictionary?: Buffer): Promise<Buffer> {
  const output = new Promise<Buffer>((resolve, reject) =>
    deflateRaw(
      input,
      {
        level,
        ...(dictionary ? { dictionary } : {}),
        finishFlush: final ? zc.Z_FINISH : zc.Z_SYNC_FLUSH,
        chunkSize: (input.length >> 1) + 1024,
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    ),
  );
  output.catch(() => undefined);
  return output;
}

/** `data` as stored deflate blocks (≤ 65,535 bytes each, byte-aligned after a sync flush); BFINAL on the last if `final`. */
function storedBlocks(data: Buffer, final: boolean): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += 0xffff) {
    const n = Math.min(0xffff, data.length - off);
    out.push(Buffer.from([final && off + n === data.length ? 1 : 0, n & 0xff, n >> 8, ~n & 0xff, (~n >> 8) & 0xff]));
    out.push(data.subarray(off, off + n));
  }
  return out;
}

/**
 * zstd through the `zstd` program (Node 20's zlib has no zstd): the tar goes to its stdin, the frame comes
 * back on stdout and is hashed and written as it arrives. `-T2` fixes the job layout: with any number of
 * worker threads ≥ 1 libzstd's output depends only on level and input, so digests do not depend on cores.
 */
class ZstdProgram implements BlockSink {
  private readonly child;
  private readonly done: Promise<void>;

  constructor(out: Output, level: number) {
    const { child, stderr } = spawnZstd([`-${level}`, '-T2']);
    this.child = child;
    this.child.stdout.on('data', (d: Buffer) => out.write(d));
    // A write after zstd died (EPIPE) is reported by its exit status below, not as an unhandled error.
    this.child.stdin.on('error', () => undefined);
    this.done = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code, signal) =>
        code === 0 ? resolve() : reject(new Error(`zstd exited with ${code ?? signal}: ${stderr()}`)),
      );
    });
    this.done.catch(() => undefined);
  }

  async block(data: Buffer, last: boolean, release: (b: Buffer) => void): Promise<void> {
    const stdin = this.child.stdin;
    if (!stdin.write(data, () => release(data))) {
      await new Promise<void>((resolve, reject) => {
        const fail = () => reject(new Error('zstd closed its input'));
        stdin.once('drain', () => {
          stdin.off('close', fail);
          resolve();
        });
        stdin.once('close', fail);
        this.done.catch(reject);
      });
    }
    if (last) {
      stdin.end();
      await this.done;
    }
  }

  async abort(): Promise<void> {
    this.child.kill('SIGTERM');
    await this.done.catch(() => undefined);
  }
}

/** `zstd -d` as a stream stage (for reading zstd layers back): fails when the program exits non-zero. */
export function zstdDecompressor(): Duplex {
  const { child, stderr } = spawnZstd(['-d']);
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('close', (code, signal) => {
    if (code !== 0) duplex.destroy(new Error(`zstd -d exited with ${code ?? signal}: ${stderr()}`));
  });
  child.on('error', (err) => duplex.destroy(err));
  duplex.on('close', () => {
    if (child.exitCode === null) child.kill('SIGTERM');
  });
  return duplex;
}

/** The `zstd` program with `args`, quiet, stdin to stdout; `stderr()` is what it printed there so far. */
function spawnZstd(args: string[]) {
  zstdProgramVersion();
  const child = spawn('zstd', [...args, '-q', '-c', '--no-progress']);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  return { child, stderr: () => stderr.trim() };
}
