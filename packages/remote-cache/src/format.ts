import { type Descriptor, MediaType } from '@nabla-build/image';
import { canonicalJson, type EntryManifest, sha256Hex } from '@nabla-build/model';

/**
 * The OCI dialect of a shared step cache (docs/remote-cache.md). One step entry is one OCI image manifest,
 * tagged with the step's content key, whose config blob is the entry's record and whose layers are the
 * entry's files as tar chunks. Only standard manifest fields are used, so any distribution-API registry
 * (docker-registry 2.x, Docker Hub, GHCR, Harbor, ECR, Zot) stores it.
 */
export const STEP_ARTIFACT_TYPE = 'application/vnd.nabla-build.step.v1+json';
export const STEP_CONFIG_MEDIA_TYPE = 'application/vnd.nabla-build.step.config.v1+json';
export const STEP_LAYER_MEDIA_TYPE = 'application/vnd.nabla-build.step.layer.v1.tar+gzip';

/**
 * Version of the artifact layout. Bumped whenever a reader of the previous version would misread an entry;
 * an entry of another version is refused (a miss with a warning), never half-understood.
 */
export const FORMAT_VERSION = 1;

export const Annotation = {
  format: 'dev.nabla-build.step.format',
  step: 'dev.nabla-build.step.id',
  key: 'dev.nabla-build.step.key',
} as const;

export interface ChunkInfo {
  /** Digest of the gzip blob (the layer descriptor's digest). */
  digest: string;
  /** Digest of the uncompressed tar. */
  diffId: string;
  size: number;
  uncompressedSize: number;
  /** Tar entries in this chunk. */
  entries: number;
}

/** The config blob: what the entry is, its integrity record, and what its chunks hold. */
export interface StepConfig {
  format: number;
  key: string;
  step: string;
  kind: string;
  subject: string;
  entry: EntryManifest;
  /** Modification time given to every extracted file (seconds since the epoch). */
  mtime: number;
  tree: { entries: number; bytes: number };
  chunks: ChunkInfo[];
  createdBy: string;
  /**
   * The host facts of the plan the step belonged to (machine, compiler, build root): `cache prune` plans
   * with them to tell entries of other hosts from stale ones. Absent in entries pushed before it existed.
   */
  host?: Record<string, unknown>;
}

export interface StepManifest {
  schemaVersion: 2;
  mediaType: string;
  artifactType: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations: Record<string, string>;
}

export interface EncodedBlob {
  bytes: Buffer;
  digest: string;
}

function blob(text: string): EncodedBlob {
  const bytes = Buffer.from(text, 'utf8');
  return { bytes, digest: `sha256:${sha256Hex(bytes)}` };
}

/** The config blob and the manifest that points at it and at the chunks. */
export function encodeArtifact(config: StepConfig): { config: EncodedBlob; manifest: EncodedBlob } {
  const c = blob(canonicalJson(config));
  const manifest: StepManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    artifactType: STEP_ARTIFACT_TYPE,
    config: { mediaType: STEP_CONFIG_MEDIA_TYPE, digest: c.digest, size: c.bytes.length },
    layers: config.chunks.map((ch) => ({ mediaType: STEP_LAYER_MEDIA_TYPE, digest: ch.digest, size: ch.size })),
    annotations: {
      [Annotation.format]: String(config.format),
      [Annotation.step]: config.step,
      [Annotation.key]: config.key,
    },
  };
  return { config: c, manifest: blob(canonicalJson(manifest)) };
}

/** Why an artifact cannot be used: `incompatible` (another format version) or `invalid` (not ours, damaged). */
export class ArtifactProblem extends Error {
  constructor(
    readonly kind: 'incompatible' | 'invalid',
    message: string,
    readonly format?: number,
  ) {
    super(message);
  }
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new ArtifactProblem('invalid', `${what} is not JSON`);
  }
}

function checkFormat(format: number): void {
  if (format !== FORMAT_VERSION)
    throw new ArtifactProblem(
      'incompatible',
      `the entry has format version ${format}, this nabla-build reads version ${FORMAT_VERSION}`,
      format,
    );
}

/** Parses and checks a manifest fetched for `key`; throws ArtifactProblem. */
export function decodeManifest(bytes: Buffer, key: string): StepManifest {
  const m = parseJson<StepManifest>(bytes, 'the manifest');
  if (m === null || typeof m !== 'object' || m.schemaVersion !== 2)
    throw new ArtifactProblem('invalid', 'the manifest is not an OCI image manifest');
  const formatText = m.annotations?.[Annotation.format];
  const ours =
    m.artifactType === STEP_ARTIFACT_TYPE ||
    m.config?.mediaType === STEP_CONFIG_MEDIA_TYPE ||
    (typeof m.artifactType === 'string' && m.artifactType.startsWith('application/vnd.nabla-build.step.'));
  if (!ours) throw new ArtifactProblem('invalid', `not a nabla-build step entry (artifactType ${m.artifactType})`);
  const format = Number(formatText);
  if (!Number.isInteger(format)) throw new ArtifactProblem('invalid', 'the manifest has no format version');
  checkFormat(format);
  if (m.artifactType !== STEP_ARTIFACT_TYPE || m.config?.mediaType !== STEP_CONFIG_MEDIA_TYPE)
    throw new ArtifactProblem('invalid', 'unexpected artifact or config media type');
  if (m.annotations?.[Annotation.key] !== key)
    throw new ArtifactProblem('invalid', `the manifest is for key ${m.annotations?.[Annotation.key]}, not ${key}`);
  if (!DIGEST.test(m.config.digest) || !Array.isArray(m.layers))
    throw new ArtifactProblem('invalid', 'the manifest has malformed descriptors');
  for (const l of m.layers) {
    if (l.mediaType !== STEP_LAYER_MEDIA_TYPE || !DIGEST.test(l.digest) || !Number.isSafeInteger(l.size) || l.size < 0)
      throw new ArtifactProblem('invalid', `layer ${l.digest} is not a step chunk`);
  }
  return m;
}

/** Parses the config blob (already digest-checked) and checks it against the manifest and the key. */
export function decodeConfig(bytes: Buffer, manifest: StepManifest, key: string): StepConfig {
  const c = parseJson<StepConfig>(bytes, 'the config blob');
  checkFormat(c.format);
  if (c.key !== key || c.entry?.key !== key)
    throw new ArtifactProblem('invalid', 'the entry record belongs to another key');
  if (!Array.isArray(c.entry.files) || !Array.isArray(c.chunks) || c.chunks.length !== manifest.layers.length)
    throw new ArtifactProblem('invalid', 'the entry record does not match its manifest');
  c.chunks.forEach((ch, i) => {
    const l = manifest.layers[i] as Descriptor;
    if (ch.digest !== l.digest || ch.size !== l.size || !DIGEST.test(ch.diffId))
      throw new ArtifactProblem('invalid', `chunk ${i} does not match its layer`);
  });
  return c;
}
