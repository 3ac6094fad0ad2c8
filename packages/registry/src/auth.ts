/** A `WWW-Authenticate` challenge: scheme plus its parameters (`realm`, `service`, `scope`). */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a `WWW-Authenticate` header (`Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`):
 * the scheme, then RFC 7235 auth-params with quoted or token values. Undefined when absent or empty.
 */
export function parseChallenge(header: string | null): Challenge | undefined {
  const text = header?.trim();
  if (!text) return undefined;
  const m = /^([A-Za-z][\w-]*)(?:\s+(.*))?$/s.exec(text);
  if (!m?.[1]) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g;
  for (const p of (m[2] ?? '').matchAll(re)) {
    if (p[1]) params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1], params };
}

/** `repository:<name>:<actions>` scopes, merged per repository, in a stable order. */
export function mergeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  const others: string[] = [];
  for (const s of scopes.flatMap((x) => x.split(' ')).filter(Boolean)) {
    const parts = s.split(':');
    if (parts.length < 3) {
      others.push(s);
      continue;
    }
    const actions = parts.pop() ?? '';
    const key = parts.join(':');
    const set = byResource.get(key) ?? new Set<string>();
    for (const a of actions.split(',')) if (a) set.add(a);
    byResource.set(key, set);
  }
  const merged = [...byResource].map(([k, v]) => `${k}:${[...v].sort().join(',')}`);
  return [...new Set([...merged, ...others])].sort();
}
