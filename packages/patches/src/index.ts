export {
  type ApplyOptions,
  applySeries,
  type HunkReport,
  PatchError,
  type PatchFailureKind,
  type PatchResult,
  type SeriesToApply,
} from './apply.js';
export { type PatchHunk, type PatchTarget, parsePatch, stripPath, subtreeOf } from './parse.js';
export { listSeries, type PatchRef, patchTargets, seriesDigest } from './series.js';
