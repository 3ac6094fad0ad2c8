import { UsageError } from '@nabla-build/model';
// Two functions, not the whole package: semver's index loads every range and comparison module.
import coerce from 'semver/functions/coerce.js';
import parse from 'semver/functions/parse.js';

export interface NamingOptions {
  /** Registry host, e.g. `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry?: string;
  /** Namespace (Docker Hub user or organisation), e.g. `acme`. */
  namespace?: string;
  /** Extra tags from `--tag`. */
  extraTags: string[];
  /** Only the immutable build tag (plus --tag): for CI runs that should not move `latest`. */
  immutableOnly?: boolean;
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** `docker.io/acme/lkl-nabla-python3-base`, or just the repository when nothing says where it goes. */
export function imageName(repository: string, opts: Pick<NamingOptions, 'registry' | 'namespace'>): string {
  const parts = [opts.registry, opts.namespace, repository].filter((p): p is string => Boolean(p));
  if (opts.registry && !opts.namespace && opts.registry === 'docker.io')
    throw new UsageError('naming.namespace', 'pushing to Docker Hub needs a namespace', {
      hint: 'pass --namespace <user-or-org> or set `namespace:` in the config',
    });
  return parts.join('/');
}

/**
 * Tags for a base image, derived from the application version with semver: 3.5.2 → `3.5.2`, `3.5`, `3`,
 * `latest`, plus the immutable build tag `3.5.2-<key>` (the image step's content key) that never moves, so
 * downstream Dockerfiles can pin either a moving version or an exact build.
 */
export function imageTags(version: string, key: string, opts: NamingOptions): string[] {
  const immutable = `${sanitize(version)}-${key.slice(0, 12)}`;
  const tags: string[] = [];
  if (!opts.immutableOnly) {
    const parsed = parse(version) ?? coerce(version);
    if (parsed) {
      const v = parsed.version;
      tags.push(version === v ? v : sanitize(version));
      if (!parsed.prerelease.length) tags.push(`${parsed.major}.${parsed.minor}`, `${parsed.major}`);
    } else {
      tags.push(sanitize(version));
    }
    tags.push('latest');
  }
  tags.push(immutable);
  for (const t of opts.extraTags) {
    if (!TAG.test(t))
      throw new UsageError(
        'naming.tag',
        `--tag "${t}" is not a valid tag (letters, digits, "_", ".", "-"; at most 128)`,
      );
    tags.push(t);
  }
  return [...new Set(tags)];
}

function sanitize(v: string): string {
  return v.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 100);
}
