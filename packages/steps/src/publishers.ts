/**
 * Where a built image goes, behind one interface (ko's publish.Interface): an OCI directory, a tarball, the
 * local Docker engine, a registry. The publish step asks each publisher of its list in turn.
 */
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import type { PublishInputs } from '@nabla-build/model';
import { imageName } from '@nabla-build/plan';
import {
  type CredentialStore,
  describeRetry,
  loadIntoDocker,
  pushImage,
  writeOciDir,
  writeTarball,
} from '@nabla-build/registry';
import { dockerClient } from './docker.js';
import type { PublishedImage } from './environment.js';

/** What a publisher may report while it works. */
export interface PublishContext {
  signal: AbortSignal;
  /** A phase line on stderr (every progress mode shows it). */
  phase(text: string): void;
  /** A line of the step's output (log, verbose). */
  output(text: string): void;
}

/** What one publisher produced (the publish step adds the target and the manifest digest). */
export type Publication = Omit<PublishedImage, 'target' | 'manifestDigest'>;

export interface Publisher {
  /** `oci:<dir>`, `tar:<file>`, `docker-load`, `registry:<name>`: for messages. */
  readonly name: string;
  /** Publishes the OCI layout `layout` under `tags`. */
  publish(layout: string, tags: string[], ctx: PublishContext): Promise<Publication>;
}

/** A copy of the layout as an OCI image layout directory naming the image once per tag (`oci:<dir>:<tag>`). */
export function ociDirPublisher(dest: string): Publisher {
  return {
    name: `oci:${dest}`,
    publish: async (layout, tags) => {
      await writeOciDir(layout, dest, tags);
      return { kind: 'oci', reference: `oci:${dest}`, tags };
    },
  };
}

/** One tar that `docker load -i` reads, tagged `<name>:<tag>` for every tag. */
export function tarballPublisher(dest: string, name: string): Publisher {
  return {
    name: `tar:${dest}`,
    publish: async (layout, tags) => {
      await writeTarball(
        layout,
        dest,
        tags.map((t) => `${name}:${t}`),
      );
      return { kind: 'tar', reference: `tar:${dest}`, tags };
    },
  };
}

/** The engine DOCKER_HOST names; nothing is loaded when it already has the image under every tag. */
export function dockerLoadPublisher(name: string, imageId: string): Publisher {
  return {
    name: 'docker-load',
    publish: async (layout, tags, ctx) => {
      const refs = tags.map((t) => `${name}:${t}`);
      const docker = await dockerClient();
      if (await allTagged(docker, refs, imageId)) ctx.phase('already in the engine');
      else {
        ctx.phase('docker load');
        await loadIntoDocker(layout, refs, { docker });
      }
      return { kind: 'load', reference: refs[refs.length - 1] as string, tags };
    },
  };
}

/** A registry, over the distribution API (no daemon), with the credentials the CLI passed in. */
export function registryPublisher(
  name: string,
  opts: { credentials: CredentialStore; insecure: (registry: string) => boolean },
): Publisher {
  return {
    name: `registry:${name}`,
    publish: async (layout, tags, ctx) => {
      ctx.phase(`push to ${name}`);
      const r = await pushImage(
        layout,
        tags.map((t) => `${name}:${t}`),
        {
          credentials: opts.credentials,
          insecure: opts.insecure,
          signal: ctx.signal,
          onEvent: (e) => {
            if (e.kind === 'blob') ctx.output(`${e.action} ${e.digest.slice(0, 19)} (${e.size} bytes)`);
            else if (e.kind === 'tagged') ctx.output(`tagged ${e.reference}`);
            // A phase, so it is a line on stderr in every progress mode: a stalled push is never silent.
            else if (e.kind === 'retry') ctx.phase(describeRetry(e.notice));
          },
        },
      );
      return { kind: 'push', reference: `${name}@${r.manifestDigest}`, tags, bytesUploaded: r.stats.bytesUploaded };
    },
  };
}

/** Everything a publish step's inputs ask for, in order: files first, then the engine, then the registry. */
export function publishersFor(
  i: PublishInputs,
  o: {
    target: string;
    several: boolean;
    imageId: string;
    credentials: (registry: string | undefined) => CredentialStore;
    insecure: (registry: string) => boolean;
  },
): Publisher[] {
  // Asked for only where a name is needed: Docker Hub without a namespace is an error for those alone.
  const name = () => imageName(i.repository, i.naming);
  const list: Publisher[] = [];
  for (const out of i.outputs) {
    const [kind, path] = [out.slice(0, 3), out.slice(4)];
    const dest = o.several ? perTarget(path, o.target, kind) : path;
    list.push(kind === 'oci' ? ociDirPublisher(dest) : tarballPublisher(dest, name()));
  }
  if (i.load) list.push(dockerLoadPublisher(name(), o.imageId));
  if (i.push)
    list.push(
      registryPublisher(name(), {
        // NABLA_REGISTRY_USER/PASSWORD are for this push's registry only (or NABLA_REGISTRY_HOST's).
        credentials: o.credentials(i.naming.registry),
        insecure: o.insecure,
      }),
    );
  return list;
}

/** True when every reference already names this image in the engine: loading it again would change nothing. */
async function allTagged(docker: Dockerode, refs: string[], imageId: string): Promise<boolean> {
  for (const ref of refs) {
    const info = await docker
      .getImage(ref)
      .inspect()
      .catch(() => undefined);
    if (info?.Id !== imageId) return false;
  }
  return true;
}

/** Where one of several targets writes an `oci:`/`tar:` output (also what `build --dry-run` prints). */
export function perTarget(path: string, target: string, kind: string): string {
  if (kind === 'oci') return join(path, target);
  return path.endsWith('.tar') ? `${path.slice(0, -4)}-${target}.tar` : `${path}-${target}`;
}
