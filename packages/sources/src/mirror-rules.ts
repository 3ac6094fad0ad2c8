import { isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type MirrorRule, UsageError } from '@nabla-build/model';

/**
 * Built-in rules, always in effect. GitHub turned off the unauthenticated `git://` protocol on 2022-03-15, and
 * frankenlibc's `.gitmodules` still says `git://github.com/...`: such URLs are rewritten to `https://github.com/...`.
 * User rules are matched first against the original URL and then, if a built-in rule rewrote it, against the
 * rewritten one, so `https://github.com/=/srv/mirror/` also catches `git://github.com/...`.
 */
export const DEFAULT_MIRROR_RULES: readonly MirrorRule[] = Object.freeze([
  {
    prefix: 'git://github.com/',
    replacement: 'https://github.com/',
    origin: 'built-in default (GitHub no longer serves git://)',
  },
]);

export interface MirrorOptions {
  /** Allow replacements that are local paths or `file://` URLs. */
  allowLocal?: boolean;
  /** Leave out the built-in rules (tests, diagnostics). */
  noDefaults?: boolean;
}

export interface MirrorResolution {
  /** The URL (or local absolute path) to use. */
  url: string;
  /** The rules that rewrote it, in order (empty when the URL is used as is). */
  rules: MirrorRule[];
  /** True when `url` is a local path or a `file://` URL. */
  local: boolean;
}

/** True for an absolute path or a `file://` URL. */
export function isLocalLocation(s: string): boolean {
  return s.startsWith('file://') || isAbsolute(s);
}

/** A `file://` URL or absolute path as a filesystem path. */
export function localPath(s: string): string {
  return s.startsWith('file://') ? fileURLToPath(s) : s;
}

function longestMatch(url: string, rules: readonly MirrorRule[]): MirrorRule | undefined {
  let best: MirrorRule | undefined;
  for (const r of rules) {
    // Ties go to the earlier rule: the caller lists more specific origins (--mirror) before broader ones (config).
    if (url.startsWith(r.prefix) && (best === undefined || r.prefix.length > best.prefix.length)) best = r;
  }
  return best;
}

function rewrite(url: string, rule: MirrorRule, opts: MirrorOptions): string {
  if (isLocalLocation(rule.replacement) && !opts.allowLocal) {
    throw new UsageError(
      'mirror.local-forbidden',
      `mirror rule \`${rule.prefix}=${rule.replacement}\` (from ${rule.origin}) points at a local path, which is not allowed`,
      { where: rule.origin, hint: 'set `allowLocal: true` in the nabla-build config to use local mirrors' },
    );
  }
  return rule.replacement + url.slice(rule.prefix.length);
}

/** Rewrites `url` with the longest matching prefix rule; see {@link DEFAULT_MIRROR_RULES} for the built-ins. */
export function resolveMirror(url: string, rules: readonly MirrorRule[], opts: MirrorOptions = {}): MirrorResolution {
  const user = longestMatch(url, rules);
  if (user) {
    const out = rewrite(url, user, opts);
    return { url: out, rules: [user], local: isLocalLocation(out) };
  }
  const builtin = opts.noDefaults ? undefined : longestMatch(url, DEFAULT_MIRROR_RULES);
  if (builtin) {
    const mid = rewrite(url, builtin, opts);
    const second = longestMatch(mid, rules);
    if (second) {
      const out = rewrite(mid, second, opts);
      return { url: out, rules: [builtin, second], local: isLocalLocation(out) };
    }
    return { url: mid, rules: [builtin], local: localAllowed(mid, opts) };
  }
  return { url, rules: [], local: localAllowed(url, opts) };
}

/**
 * A source (or submodule) URL that names the local file system directly (`file://`, an absolute path) reads
 * the host: like a local mirror rule, it needs `allowLocal`, so a recipe cannot pull files off the machine.
 */
function localAllowed(url: string, opts: MirrorOptions): boolean {
  if (!isLocalLocation(url)) return false;
  if (!opts.allowLocal)
    throw new UsageError(
      'source.local-forbidden',
      `${url} is a local path, which sources may only name when the config allows it`,
      {
        where: url,
        hint: 'set `allowLocal: true` in the nabla-build config (or use a remote URL)',
      },
    );
  return true;
}

/** The URL (or local path) to fetch `url` from, after mirror rules. */
export function applyMirrors(url: string, rules: readonly MirrorRule[], opts: MirrorOptions = {}): string {
  return resolveMirror(url, rules, opts).url;
}

/** Fails early (at config load) when a rule needs `allowLocal`. */
export function validateMirrorRules(rules: readonly MirrorRule[], opts: MirrorOptions = {}): void {
  for (const r of rules) rewrite(r.prefix, r, opts);
}

/** Parses one `prefix=replacement` mirror spec (`--mirror`, one entry of `NABLA_BUILD_MIRRORS`). */
export function parseMirrorSpec(spec: string, origin: string): MirrorRule {
  const text = spec.trim();
  const eq = text.indexOf('=');
  if (eq < 0) {
    throw new UsageError('mirror.invalid', `mirror spec \`${text}\` has no \`=\`: expected \`prefix=replacement\``, {
      where: origin,
      hint: 'example: --mirror git://github.com/=https://github.com/',
    });
  }
  const prefix = text.slice(0, eq).trim();
  const replacement = text.slice(eq + 1).trim();
  if (!prefix || !replacement) {
    throw new UsageError(
      'mirror.invalid',
      `mirror spec \`${text}\` has an empty ${prefix ? 'replacement' : 'prefix'}`,
      {
        where: origin,
        hint: 'expected `prefix=replacement`, e.g. https://ftp.pcre.org/pub/pcre/=https://sourceforge.net/projects/pcre/files/pcre/',
      },
    );
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(prefix)) {
    throw new UsageError('mirror.invalid', `mirror prefix \`${prefix}\` is not a URL (scheme://...)`, {
      where: origin,
      hint: 'the prefix is matched against source URLs from recipes, e.g. git://github.com/',
    });
  }
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(replacement) && !isAbsolute(replacement)) {
    throw new UsageError(
      'mirror.invalid',
      `mirror replacement \`${replacement}\` is neither a URL nor an absolute path`,
      { where: origin, hint: 'use https://..., file:///abs/dir/ or /abs/dir/' },
    );
  }
  return { prefix, replacement, origin };
}

/** Parses a comma- or newline-separated list of mirror specs (`NABLA_BUILD_MIRRORS`); blank entries are skipped. */
export function parseMirrorList(text: string, origin: string): MirrorRule[] {
  return text
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0 && !s.startsWith('#'))
    .map((s) => parseMirrorSpec(s, origin));
}

/** The rules from `NABLA_BUILD_MIRRORS`, if set. */
export function mirrorsFromEnv(env: NodeJS.ProcessEnv): MirrorRule[] {
  const v = env.NABLA_BUILD_MIRRORS;
  return v ? parseMirrorList(v, 'NABLA_BUILD_MIRRORS') : [];
}
