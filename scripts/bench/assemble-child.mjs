// One image assembly in a process of its own, so its peak RSS is its own: prints JSON with the assembly's
// wall time (without Node's start-up), peak RSS and layer sizes.
//   node scripts/bench/assemble-child.mjs <tree> <outDir> <gzip|gzip:N|zstd|zstd:N|none>
import { assembleImage, parseLayerFormat } from '@nabla-build/image';

const [tree, outDir, format = 'gzip'] = process.argv.slice(2);
const f = parseLayerFormat(format);
const t = process.hrtime.bigint();
const r = await assembleImage(
  {
    files: [{ hostPath: tree, imagePath: '/' }],
    config: {
      entrypoint: ['/python3.nabla'],
      cmd: [],
      env: { PYTHONHOME: '/usr/local' },
      labels: {},
      exposedPorts: [],
    },
    created: new Date(1600000000000),
    compression: f.compression,
    ...(f.level !== undefined ? { level: f.level } : {}),
  },
  outDir,
);
const ms = Number(process.hrtime.bigint() - t) / 1e6;
process.stdout.write(
  `${JSON.stringify({
    ms,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    layerBytes: r.sizes.layers[0],
    tarBytes: r.sizes.uncompressedLayers[0],
    entries: r.entries,
    manifestDigest: r.manifestDigest,
  })}\n`,
);
