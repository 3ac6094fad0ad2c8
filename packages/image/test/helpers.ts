export { execFileP, haveTool, tempDir } from '@nabla-build/testing/scratch';

/** Deterministic pseudo-random bytes (xorshift), partly compressible like a real binary. */
export function pseudoRandomBytes(size: number, seed: number): Buffer {
  const buf = Buffer.alloc(size);
  let x = seed | 1;
  for (let i = 0; i < size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    // Every other 64-byte run is low-entropy text, so gzip has something to do.
    const v = (i >> 6) & 1 ? 0x61 + ((x >>> 0) % 8) : x >>> 0;
    if ((i >> 6) & 1) buf.fill(v, i, Math.min(i + 4, size));
    else buf.writeUInt32LE(v >>> 0, i + 4 <= size ? i : size - 4);
  }
  return buf;
}
