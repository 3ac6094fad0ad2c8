import { UsageError, contentKey, sha256Hex } from '@nabla-build/model';

/** One thing inside the image: a pinned source, a tarball, the unikernel itself. */
export interface SbomComponent {
  name: string;
  version?: string;
  /** Git URL (or tarball URL) it was fetched from. */
  url?: string;
  /** Full git commit, for git sources. */
  commit?: string;
  /** sha256 (hex) of a tarball or file. */
  sha256?: string;
  /** SPDX license expression, when known. */
  license?: string;
}

export interface SbomOptions {
  /** The image (document subject), e.g. `lkl-nabla-python3-base`. */
  name: string;
  version?: string;
  created: Date;
  /** URI prefix of `documentNamespace`; the rest is a content hash, so equal inputs give equal documents. */
  namespaceBase?: string;
}

export interface SbomResult {
  document: Record<string, unknown>;
  /** The document as written into the image (`/sbom.spdx.json`). */
  json: string;
  /** `sha256:` of `json`, for the `dev.nabla-build.sbom.digest` label. */
  digest: string;
}

/**
 * An SPDX 2.3 JSON document: the image as the described package, CONTAINS one package per component.
 * Deterministic: same components and options give the same bytes.
 */
export function sbom(components: readonly SbomComponent[], opts: SbomOptions): SbomResult {
  const created = opts.created.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const used = new Set<string>(['SPDXRef-DOCUMENT', 'SPDXRef-Image']);
  const packages: Record<string, unknown>[] = [
    {
      name: opts.name,
      SPDXID: 'SPDXRef-Image',
      ...(opts.version ? { versionInfo: opts.version } : {}),
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      primaryPackagePurpose: 'CONTAINER',
    },
  ];
  const relationships: Record<string, string>[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Image' },
  ];
  for (const c of components) {
    if (!c.name) throw new UsageError('sbom.invalid', 'an SBOM component has no name');
    if (c.commit !== undefined && !/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(c.commit)) {
      throw new UsageError('sbom.invalid', `component ${c.name}: commit ${JSON.stringify(c.commit)} is not a full SHA`);
    }
    if (c.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(c.sha256)) {
      throw new UsageError(
        'sbom.invalid',
        `component ${c.name}: sha256 ${JSON.stringify(c.sha256)} is not 64 hex digits`,
      );
    }
    let id = `SPDXRef-Package-${c.name.replace(/[^A-Za-z0-9.-]/g, '-')}`;
    for (let n = 2; used.has(id); n++) id = `SPDXRef-Package-${c.name.replace(/[^A-Za-z0-9.-]/g, '-')}-${n}`;
    used.add(id);
    packages.push({
      name: c.name,
      SPDXID: id,
      ...(c.version ? { versionInfo: c.version } : {}),
      downloadLocation: downloadLocation(c),
      filesAnalyzed: false,
      ...(c.sha256 ? { checksums: [{ algorithm: 'SHA256', checksumValue: c.sha256 }] } : {}),
      ...(c.commit ? { sourceInfo: `built from git commit ${c.commit}` } : {}),
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: c.license ?? 'NOASSERTION',
      copyrightText: 'NOASSERTION',
    });
    relationships.push({ spdxElementId: 'SPDXRef-Image', relationshipType: 'CONTAINS', relatedSpdxElement: id });
  }
  const key = contentKey({ components, name: opts.name, version: opts.version, created });
  const document = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: opts.name,
    documentNamespace: `${opts.namespaceBase ?? 'https://spdx.nabla-build.dev/'}${encodeURIComponent(opts.name)}-${key}`,
    creationInfo: { created, creators: ['Tool: nabla-build'] },
    packages,
    relationships,
  };
  const json = `${JSON.stringify(document, null, 2)}\n`;
  return { document, json, digest: `sha256:${sha256Hex(json)}` };
}

function downloadLocation(c: SbomComponent): string {
  if (!c.url) return 'NOASSERTION';
  if (c.commit) return `git+${c.url.replace(/^git\+/, '')}@${c.commit}`;
  return c.url;
}
