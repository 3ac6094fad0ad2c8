import { UsageError } from '@nabla-build/model';

/** A parsed image reference, normalised the way Docker does (docker.io, library/). */
export interface ImageReference {
  /** `docker.io` for Docker Hub, otherwise `host[:port]` as written. */
  registry: string;
  /** Path inside the registry, e.g. `library/redis`, `nabla/lkl-nabla-hello-base`. */
  repository: string;
  tag?: string;
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
/** Where Docker Hub's registry API answers. */
export const DOCKER_HUB_API = 'registry-1.docker.io';
/** The key Docker uses for Hub credentials in config.json and credential helpers. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN =
  /^(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * Parses `name[:tag][@digest]` (distribution's grammar). A first path component with a `.` or `:`, or
 * `localhost`, is a registry; otherwise the registry is Docker Hub, where a one-component name gets
 * `library/`. Throws UsageError saying what is wrong with a malformed reference.
 */
export function parseReference(input: string): ImageReference {
  const bad = (why: string, hint?: string) =>
    new UsageError('reference.invalid', `image reference ${JSON.stringify(input)} is invalid: ${why}`, {
      where: input,
      hint:
        hint ?? 'write it as [registry/]repository[:tag][@sha256:<digest>], e.g. 127.0.0.1:5000/nabla/hello-base:1.0',
    });
  if (input.length === 0) throw bad('it is empty');
  if (/\s/.test(input)) throw bad('it contains whitespace');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(`digest ${JSON.stringify(digest)} is not sha256:<64 lower-case hex>`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(`tag ${JSON.stringify(tag)} must match [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  const slash = rest.indexOf('/');
  let registry = DOCKER_HUB;
  let path = rest;
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      registry = first;
      path = rest.slice(slash + 1);
      if (!DOMAIN.test(registry)) throw bad(`registry ${JSON.stringify(registry)} is not a host[:port]`);
    }
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (path.length === 0) throw bad('the repository name is missing');
  const components = path.split('/');
  for (const c of components) {
    if (!PATH_COMPONENT.test(c)) {
      const upper = c !== c.toLowerCase();
      throw bad(
        `repository component ${JSON.stringify(c)} ${upper ? 'has upper-case letters' : 'is not lower-case letters, digits and . _ - separators'}`,
        upper ? `use ${input.toLowerCase()}` : undefined,
      );
    }
  }
  if (registry === DOCKER_HUB && components.length === 1) path = `library/${path}`;
  if (path.length > 255) throw bad('the repository name is longer than 255 characters');
  return {
    registry,
    repository: path,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** `registry/repository[:tag][@digest]`, fully qualified (Docker Hub included). */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Hosts talked to over plain HTTP by default: loopback only (what the Docker daemon also treats as insecure). */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(0, registry.indexOf(']') + 1) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Base URL of a registry's API: https, except loopback registries and `insecure` ones (plain http). */
export function registryBaseUrl(registry: string, opts: { insecure?: boolean } = {}): URL {
  const host = registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
  const scheme = opts.insecure || isLoopbackRegistry(registry) ? 'http' : 'https';
  return new URL(`${scheme}://${host}/`);
}
