/**
 * Every image label nabla-build writes, in one file.
 *
 * | key | value | example |
 * |---|---|---|
 * | `org.opencontainers.image.source` | URL of the nabla-build repository the recipe came from | `https://github.com/acme/nabla-build` |
 * | `org.opencontainers.image.revision` | commit of that repository | `3f2c…` (40 hex) |
 * | `org.opencontainers.image.version` | the application version the tag derives from | `3.5.2` |
 * | `org.opencontainers.image.created` | RFC 3339 creation time (= SOURCE_DATE_EPOCH) | `2020-04-20T00:00:00Z` |
 * | `org.opencontainers.image.title` | image repository name | `lkl-nabla-python3-base` |
 * | `org.opencontainers.image.description` | one line from the recipe | `Python 3.5 as an LKL nabla unikernel` |
 * | `org.opencontainers.image.licenses` | SPDX expression of the application | `PSF-2.0` |
 * | `org.opencontainers.image.url` | application home page | `https://www.python.org` |
 * | `dev.nabla-build.tender` | Solo5 tender the unikernel is linked for | `spt` |
 * | `dev.nabla-build.solo5.version` | `git describe` of the Solo5 it was built with | `v0.6.4-2-gb326416` |
 * | `dev.nabla-build.solo5.spt-abi` | `SPT_ABI_VERSION`; runnc's tender must match it | `1` |
 * | `dev.nabla-build.commit.<source>` | full commit of each pinned source: `frankenlibc`, `solo5`, `lkl-linux`, `musl`, `rumprun-packages` (others allowed; `a/b` is written `a.b`) | `b326416aca06…` |
 * | `dev.nabla-build.patches.digest` | sha256 over the applied patch series (lockfile `patches`) | `sha256:…` |
 * | `dev.nabla-build.toolchain.key` | content key of the toolchain step that built the unikernel | 64 hex |
 * | `dev.nabla-build.recipe` | name of the target recipe | `python3` |
 * | `dev.nabla-build.sbom.digest` | sha256 of `/sbom.spdx.json` inside the image | `sha256:…` |
 *
 * `org.opencontainers.image.*` keys follow the image-spec's pre-defined annotation keys; `dev.nabla-build.*`
 * keys are ours (reverse DNS, lower case, dot-separated).
 */
import { UsageError } from '@nabla-build/model';

export const OciLabel = {
  source: 'org.opencontainers.image.source',
  revision: 'org.opencontainers.image.revision',
  version: 'org.opencontainers.image.version',
  created: 'org.opencontainers.image.created',
  title: 'org.opencontainers.image.title',
  description: 'org.opencontainers.image.description',
  licenses: 'org.opencontainers.image.licenses',
  url: 'org.opencontainers.image.url',
} as const;

export const NablaLabel = {
  tender: 'dev.nabla-build.tender',
  solo5Version: 'dev.nabla-build.solo5.version',
  solo5SptAbi: 'dev.nabla-build.solo5.spt-abi',
  patchesDigest: 'dev.nabla-build.patches.digest',
  toolchainKey: 'dev.nabla-build.toolchain.key',
  recipe: 'dev.nabla-build.recipe',
  sbomDigest: 'dev.nabla-build.sbom.digest',
} as const;

/** The sources whose commits every LKL nabla image records. */
export const PINNED_SOURCES = ['frankenlibc', 'solo5', 'lkl-linux', 'musl', 'rumprun-packages'] as const;

const COMMIT_PREFIX = 'dev.nabla-build.commit.';
const SOURCE_NAME = /^[a-z0-9][a-z0-9-]*(?:\.[a-z0-9][a-z0-9-]*)*$/;
const COMMIT = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * `dev.nabla-build.commit.<source>`. A nested source (`frankenlibc/rumprun`, a submodule path) becomes
 * dot-separated (`dev.nabla-build.commit.frankenlibc.rumprun`), keeping keys reverse-DNS style.
 */
export function commitLabel(source: string): string {
  const key = source.split('/').filter(Boolean).join('.');
  if (!SOURCE_NAME.test(key)) {
    throw new UsageError('label.invalid', `source name ${JSON.stringify(source)} cannot be part of a label key`, {
      where: `${COMMIT_PREFIX}${source}`,
      hint: 'use lower-case letters, digits, `-`, and `/` or `.` between parts',
    });
  }
  return `${COMMIT_PREFIX}${key}`;
}

/** Plain facts about an image; every field is optional and absent ones give no label. */
export interface ImageFacts {
  source?: string;
  revision?: string;
  version?: string;
  created?: Date | string;
  title?: string;
  description?: string;
  licenses?: string;
  url?: string;
  tender?: 'spt' | 'hvt';
  solo5Version?: string;
  solo5SptAbi?: string | number;
  /** Source name → full commit SHA. */
  commits?: Record<string, string>;
  patchesDigest?: string;
  toolchainKey?: string;
  recipe?: string;
  sbomDigest?: string;
}

/**
 * The label set for an image, from plain facts. Checks the shapes that are easy to get wrong (commits must be
 * full SHAs, digests `sha256:`-prefixed) and throws UsageError naming the label.
 */
export function imageLabels(facts: ImageFacts): Record<string, string> {
  const out: Record<string, string> = {};
  /** Sets `key` unless `value` is absent or empty; with `re`, `value` must match it (`what` says how). */
  const set = (key: string, value: string | undefined, re?: RegExp, what?: string) => {
    if (value !== undefined && re && !re.test(value)) {
      throw new UsageError('label.invalid', `${key}: ${JSON.stringify(value)} is not ${what}`, { where: key });
    }
    if (value !== undefined && value !== '') out[key] = value;
  };
  set(OciLabel.source, facts.source);
  set(OciLabel.revision, facts.revision, COMMIT, 'a full commit SHA');
  set(OciLabel.version, facts.version);
  if (facts.created !== undefined) {
    const d = typeof facts.created === 'string' ? new Date(facts.created) : facts.created;
    if (Number.isNaN(d.getTime()))
      throw new UsageError('label.invalid', `${OciLabel.created}: not a date`, { where: OciLabel.created });
    set(OciLabel.created, d.toISOString().replace(/\.000Z$/, 'Z'));
  }
  set(OciLabel.title, facts.title);
  set(OciLabel.description, facts.description);
  set(OciLabel.licenses, facts.licenses);
  set(OciLabel.url, facts.url);
  set(NablaLabel.tender, facts.tender);
  set(NablaLabel.solo5Version, facts.solo5Version);
  set(NablaLabel.solo5SptAbi, facts.solo5SptAbi === undefined ? undefined : String(facts.solo5SptAbi));
  for (const [source, commit] of Object.entries(facts.commits ?? {})) {
    set(commitLabel(source), commit, COMMIT, 'a full commit SHA');
  }
  set(NablaLabel.patchesDigest, facts.patchesDigest, DIGEST, 'a sha256: digest');
  set(NablaLabel.toolchainKey, facts.toolchainKey);
  set(NablaLabel.recipe, facts.recipe);
  set(NablaLabel.sbomDigest, facts.sbomDigest, DIGEST, 'a sha256: digest');
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
