import { copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { constants, createWriteStream } from 'node:fs';
import {
  blobPath,
  layoutToTarStream,
  readLayout,
  REF_NAME_ANNOTATION,
  replaceDirAtomically,
  replaceFileAtomically,
  writeLayoutFiles,
} from '@nabla-build/image';

/**
 * Copies the image of a layout to `dest` as a clean OCI layout (only the blobs it references, plus Docker's
 * manifest.json), replacing `dest` atomically. Blobs are reflinked where the filesystem can. With `tags`, the
 * index names the manifest once per tag (`org.opencontainers.image.ref.name`), so `oci:<dest>:<tag>` works for
 * every tag of the image, not only `latest`.
 */
export async function writeOciDir(
  layoutDir: string,
  dest: string,
  tags: string[] = [],
): Promise<{ manifestDigest: string }> {
  const image = await readLayout(layoutDir);
  await replaceDirAtomically(dest, async (tmp) => {
    await mkdir(join(tmp, 'blobs', 'sha256'), { recursive: true });
    for (const d of [image.manifestDescriptor, ...image.blobs]) {
      await copyFile(blobPath(layoutDir, d.digest), blobPath(tmp, d.digest), constants.COPYFILE_FICLONE);
    }
    const { [REF_NAME_ANNOTATION]: _name, ...annotations } = image.manifestDescriptor.annotations ?? {};
    const manifests =
      tags.length === 0
        ? [image.manifestDescriptor]
        : tags.map((t) => ({ ...image.manifestDescriptor, annotations: { ...annotations, [REF_NAME_ANNOTATION]: t } }));
    await writeLayoutFiles(tmp, image.manifestDescriptor, image.manifest, { ...image.index, manifests });
  });
  return { manifestDigest: image.manifestDigest };
}

/**
 * Writes the layout as one tar that `docker load -i` and `skopeo … docker-archive:`/`oci-archive:` read,
 * tagged `repoTags`; atomic (temporary file, then rename). Same layout and tags give the same bytes.
 */
export async function writeTarball(
  layoutDir: string,
  file: string,
  repoTags: string[],
): Promise<{ manifestDigest: string }> {
  const image = await readLayout(layoutDir);
  await replaceFileAtomically(file, (tmp) => pipeline(layoutToTarStream(layoutDir, repoTags), createWriteStream(tmp)));
  return { manifestDigest: image.manifestDigest };
}
