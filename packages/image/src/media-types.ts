/**
 * The media types nabla-build writes and reads, in one place. OCI types are what `assembleImage` writes;
 * the Docker v2 types are accepted when reading (and sent in Accept headers by the registry client), because
 * registries may hand back either.
 */
export const MediaType = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Manifest media types a client should accept, OCI first. */
export const MANIFEST_MEDIA_TYPES: readonly string[] = [
  MediaType.ociManifest,
  MediaType.dockerManifest,
  MediaType.ociIndex,
  MediaType.dockerManifestList,
];

/** True for layer media types whose blob is gzip-compressed. */
export function isGzipLayer(mediaType: string): boolean {
  return mediaType.endsWith('+gzip') || mediaType === MediaType.dockerLayerGzip;
}

/** True for layer media types whose blob is zstd-compressed. */
export function isZstdLayer(mediaType: string): boolean {
  return mediaType.endsWith('+zstd');
}

/** The `oci-layout` file's content (image-spec v1.0+). */
export const OCI_LAYOUT_VERSION = '1.0.0';

/** Annotation on an index entry naming its tag inside an OCI layout (what `oci:DIR:tag` and umoci use). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';
