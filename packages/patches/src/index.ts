export { applySeries, PatchError, type SeriesToApply } from './apply.js';
export { parsePatch, stripPath, subtreeOf } from './parse.js';
export { listSeries, type PatchRef, patchTargets, seriesDigest } from './series.js';
