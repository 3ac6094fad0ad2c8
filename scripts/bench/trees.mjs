// Generated input trees for the image-assembly and checkout benchmarks. Deterministic: the same call writes the same bytes.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** mulberry32: deterministic bytes that do not compress (an LCG's low bits would). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function randomBytes(rnd, size) {
  const buf = Buffer.allocUnsafe(size);
  let i = 0;
  for (; i + 4 <= size; i += 4) buf.writeUInt32LE(rnd(), i);
  for (; i < size; i++) buf[i] = rnd() & 0xff;
  return buf;
}

/** A python3-sized tree: ≈25 MB in ≈2,000 files (text and incompressible data, like a stdlib plus a binary). */
export function generateTree(dir, { emit = writer(dir) } = {}) {
  const rnd = prng(42);
  let bytes = 0;
  for (let i = 0; i < 2000; i++) {
    const size = i === 0 ? 8 * 2 ** 20 : 2000 + (rnd() % 14000);
    const buf = Buffer.alloc(size);
    if (i % 3 === 0 || i === 0) for (let j = 0; j < size; j++) buf[j] = rnd() & 0xff;
    else buf.write(`# module ${i}\n${'def f(x):\n    return x * 2\n'.repeat(size / 30)}`.slice(0, size));
    emit(i === 0 ? 'python3.nabla' : `lib/python3.5/pkg${i % 40}/m${i}.py`, buf);
    bytes += size;
  }
  return { bytes, files: 2000 };
}

/** Writes each generated file under `dir` (the default; `emit` options take the files elsewhere). */
function writer(dir) {
  return (path, body, mode = 0o644) => {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), body, { mode });
  };
}

const WORDS =
  'self def return if else elif for in while import from class None True False try except raise with as lambda yield pass break continue and or not is assert global nonlocal del print len range str int dict list tuple set object value name path data result args kwargs key item index buffer stream encoding errors module func text line os sys re io _get _set _make _check _parse'.split(
    ' ',
  );

/**
 * Source-like lines: a pool of distinct lines, so files compress like source rather than like a repeat (3.1×
 * at zlib level 4, measured; the .py files of Debian's Python 3.11 compress 4.1×).
 */
function linePool(rnd, n) {
  const pool = [];
  for (let i = 0; i < n; i++) {
    const indent = '    '.repeat(rnd() % 4);
    const k = 2 + (rnd() % 9);
    const words = [];
    for (let j = 0; j < k; j++) {
      const w = WORDS[rnd() % WORDS.length];
      words.push(rnd() % 5 === 0 ? `${w}_${(rnd() % 1000).toString(36)}` : w);
    }
    pool.push(`${indent}${words.join(rnd() % 3 === 0 ? ', ' : ' ')}${rnd() % 4 === 0 ? ':' : ''}\n`);
  }
  return pool;
}

function sourceFile(rnd, pool, size) {
  const parts = [];
  let n = 0;
  while (n < size) {
    const l = pool[rnd() % pool.length];
    parts.push(l);
    n += l.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

/**
 * Bytecode-like: a skewed alphabet without repeats. Compresses only 1.16× at zlib level 4 (real .pyc files:
 * 2.6×), and zlib is slowest on it (45 MB/s against 66 MB/s on real .pyc): a harder tree than a real stdlib,
 * kept so the figures of earlier runs stay comparable; the bench's host-stdlib line gives the real-bytes figure.
 */
function bytecodeFile(rnd, size) {
  const buf = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) {
    const r = rnd();
    buf[i] = r & 1 ? (r >>> 1) & 0x0f : (r >>> 1) & 0xff;
  }
  return buf;
}

/**
 * A tree shaped like an installed Python standard library plus its unikernel: 20,000 files, ≈250 MB, in
 * ≈800 directories up to four levels deep. By bytes: a 20 MB unikernel and shared-object-like files that do not
 * compress (≈30 %; real ones do, ≈2.6×), bytecode-like files (≈15 %), source-like text (the rest). File sizes are
 * log-normal-ish around 8 KiB with a tail up to 2 MiB, like a stdlib.
 */
export function generateStdlibTree(dir, { files = 20000, targetBytes = 250 * 10 ** 6, emit = writer(dir) } = {}) {
  const rnd = prng(1234);
  const pool = linePool(rnd, 20000);
  const kernel = randomBytes(rnd, 20 * 2 ** 20);
  emit('python3.nabla', kernel, 0o755);
  let bytes = kernel.length;
  const dirs = [];
  for (let a = 0; a < 40; a++) {
    for (let b = 0; b < 20; b++) {
      const d = b === 0 ? `lib/python3.5/pkg${a}` : `lib/python3.5/pkg${a}/sub${b % 7}/m${b}`;
      dirs.push(d);
    }
  }
  // Sizes: exp of a sum of uniforms (≈ log-normal), then scaled so the total lands on targetBytes.
  const raw = [];
  for (let i = 1; i < files; i++) {
    const u = (rnd() / 2 ** 32 + rnd() / 2 ** 32 + rnd() / 2 ** 32) / 3;
    raw.push(Math.exp(4.5 + u * 8.5));
  }
  const scale = (targetBytes - bytes) / raw.reduce((s, x) => s + x, 0);
  for (let i = 1; i < files; i++) {
    const size = Math.max(64, Math.min(2 * 2 ** 20, Math.round(raw[i - 1] * scale)));
    const kind = rnd() % 20;
    const d = dirs[i % dirs.length];
    let body;
    let name;
    if (kind < 3) {
      body = randomBytes(rnd, size);
      name = `_m${i}.cpython-35m.so`;
    } else if (kind < 7) {
      body = bytecodeFile(rnd, size);
      name = `m${i}.cpython-35.pyc`;
    } else {
      body = sourceFile(rnd, pool, size);
      name = `m${i}.py`;
    }
    emit(`${d}/${name}`, body);
    bytes += size;
  }
  return { bytes, files };
}
