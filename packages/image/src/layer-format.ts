import { spawnSync } from 'node:child_process';
import { UsageError } from '@nabla-build/model';

/**
 * `gzip` (the default) makes the layer 2–4× smaller to push and pull and is what every engine reads; `zstd`
 * (`application/vnd.oci.image.layer.v1.tar+zstd`) compresses faster and smaller but needs a newer engine
 * (Docker 20.10 does not load it) and the `zstd` program; `none` gives digests that depend on the input alone.
 */
export type LayerCompression = 'gzip' | 'zstd' | 'none';

/** gzip level of a layer of at most SINGLE_STREAM_MAX: 9 took 5.6× as long for a 1 % smaller layer (README). */
export const GZIP_LEVEL = 6;
/**
 * gzip level of the blocks of a larger layer when no level is asked for: on the bench's 250 MB tree, half the
 * CPU of level 6 for a 1.8 % larger layer, still smaller than umoci's (README). `gzip:N` sets both levels.
 */
export const GZIP_BLOCK_LEVEL = 4;
/** zstd level used for layers (zstd's own default). */
export const ZSTD_LEVEL = 3;

/** How a layer is written: compressor and level. */
export interface LayerFormat {
  compression: LayerCompression;
  /** Default GZIP_LEVEL or ZSTD_LEVEL. */
  level?: number;
}

const LEVELS: Record<LayerCompression, [number, number] | undefined> = {
  gzip: [1, 9],
  zstd: [1, 19],
  none: undefined,
};

/** `gzip`, `gzip:4`, `zstd`, `zstd:10`, `none` → a LayerFormat (what `--compression` takes); UsageError otherwise. */
export function parseLayerFormat(text: string, where = '--compression'): LayerFormat {
  const m = /^(gzip|zstd|none)(?::(\d+))?$/.exec(text.trim());
  const range = m ? LEVELS[m[1] as LayerCompression] : undefined;
  if (!m || (m[2] !== undefined && (!range || Number(m[2]) < range[0] || Number(m[2]) > range[1]))) {
    throw new UsageError('image.bad-compression', `${where}: '${text}' is not a layer compression`, {
      where,
      hint: 'use gzip (default: level 6, 4 above 4 MiB), gzip:1…9, zstd (level 3), zstd:1…19 or none',
    });
  }
  return { compression: m[1] as LayerCompression, ...(m[2] !== undefined ? { level: Number(m[2]) } : {}) };
}

export function levelOf(f: LayerFormat): number {
  return f.level ?? (f.compression === 'zstd' ? ZSTD_LEVEL : GZIP_LEVEL);
}

let zstdVersion: string | undefined;
/** `v1.5.4` of the `zstd` program on PATH; UsageError (with the install command) when there is none. */
export function zstdProgramVersion(): string {
  if (zstdVersion) return zstdVersion;
  const r = spawnSync('zstd', ['--version'], { encoding: 'utf8' });
  const v = r.status === 0 ? /v(\d+\.\d+\.\d+)/.exec(r.stdout)?.[1] : undefined;
  if (!v) {
    throw new UsageError('image.no-zstd', 'zstd layers need the zstd program, which is not on PATH', {
      where: '--compression zstd',
      hint: 'apt-get install zstd (or packages/testing/scripts/host-deps.sh), or build with --compression gzip',
    });
  }
  zstdVersion = `v${v}`;
  return zstdVersion;
}

/**
 * What besides the input decides a layer's bytes: compressor, level, block size and the compressor's
 * version (Node's zlib, or the zstd program). Callers put it in the image step's cache key, so a Node or zstd
 * upgrade that changes the output rebuilds. `layerFormatFromFingerprint` reads it back.
 */
export function layerCompressionFingerprint(compression: LayerCompression | LayerFormat): string {
  const f = typeof compression === 'string' ? { compression } : compression;
  if (f.compression === 'gzip')
    return `gzip-${levelOf(f)}/zlib-${process.versions.zlib}/blocks-1MiB-level-${f.level ?? GZIP_BLOCK_LEVEL}-above-4MiB/random-files-stored`;
  if (f.compression === 'zstd') return `zstd-${levelOf(f)}/zstd-${zstdProgramVersion()}`;
  return 'none';
}

/** The LayerFormat a fingerprint (or a plan's `format`) stands for; `default` and unknown texts mean gzip. */
export function layerFormatFromFingerprint(fingerprint: string): LayerFormat {
  const m = /^(gzip|zstd)-(\d+)\/(?:.*\/blocks-1MiB-level-(\d+)-)?/.exec(fingerprint);
  if (m?.[1] === 'gzip' && Number(m[2]) === GZIP_LEVEL && Number(m[3]) === GZIP_BLOCK_LEVEL)
    return { compression: 'gzip' };
  if (m) return { compression: m[1] as LayerCompression, level: Number(m[2]) };
  return fingerprint === 'none' ? { compression: 'none' } : { compression: 'gzip' };
}
