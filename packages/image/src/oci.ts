/** The OCI image-spec structures nabla-build writes, trimmed to the fields it uses. */

export interface Descriptor {
  mediaType: string;
  /** `sha256:<64 hex>`. */
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

/** `config` section of an image config (Docker's names, as the OCI spec keeps them). */
export interface ContainerConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  Labels?: Record<string, string>;
  WorkingDir?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
}

export interface ImageConfig {
  created?: string;
  architecture: string;
  os: string;
  config: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: HistoryEntry[];
}

/** One entry of Docker's `manifest.json` (docker-archive / `docker load` format). */
export interface DockerArchiveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}
