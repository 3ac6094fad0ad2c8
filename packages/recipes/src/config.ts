import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { InputFileError, type MirrorRule, type SourceOverride } from '@nabla-build/model';
import { type Document, LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { fieldName, lineOf } from './locate.js';
import { gitUrl, sha1, sha256 } from './schema.js';

/**
 * The user's nabla-build config (`$XDG_CONFIG_HOME/nabla-build/config.yaml`, `NABLA_BUILD_CONFIG` or
 * `--config`): mirrors, per-source overrides, and publishing defaults. Flags override it.
 */
const configSchema = z.strictObject({
  mirrors: z.array(z.strictObject({ prefix: z.string().min(1), replace: z.string().min(1) })).default([]),
  /** Allow `file://` and local-path mirrors and submodules. Off by default: a recipe cannot read the host. */
  allowLocal: z.boolean().default(false),
  overrides: z
    .record(
      z.string().regex(/^[a-z0-9][a-z0-9._-]*(\/[A-Za-z0-9._/-]+)?$/, 'must be a source name or source/submodule-path'),
      z.strictObject({
        git: gitUrl.optional(),
        rev: sha1.optional(),
        url: z
          .string()
          .min(1)
          .refine(
            (u) => /^(https?|file):\/\//.test(u) || u.startsWith('/'),
            'must be an http(s):// or file:// URL or an absolute path',
          )
          .optional(),
        sha256: sha256.optional(),
      }),
    )
    .default({}),
  registry: z.string().min(1).optional(),
  namespace: z
    .string()
    .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'must be a valid Docker Hub namespace')
    .optional(),
  /** Default repository prefix, `registry[/namespace]` (ko's KO_DOCKER_REPO habit). */
  repo: z
    .string()
    .regex(
      /^[A-Za-z0-9.-]+(:[0-9]+)?(\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/,
      'must be registry[/namespace], e.g. ghcr.io/myorg',
    )
    .optional(),
  /** Recipe directories laid over the shipped recipes/ in order (relative to this file). */
  recipes: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  /** Cache directory (relative to this file). */
  cacheDir: z.string().min(1).optional(),
  /** Registries reached over plain HTTP. */
  insecureRegistries: z.array(z.string().min(1)).optional(),
  progress: z.enum(['auto', 'tty', 'plain', 'quiet']).optional(),
  /** Shared step caches: registry repositories or `oci:<dir>` (relative to this file). */
  cacheFrom: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
  cacheTo: z.union([z.string().min(1), z.array(z.string().min(1))]).optional(),
});

export interface UserConfig {
  mirrors: MirrorRule[];
  allowLocal: boolean;
  overrides: Record<string, SourceOverride>;
  /** Where each override was written (`file:line`), for errors about it. */
  overrideOrigins?: Record<string, string>;
  registry?: string;
  namespace?: string;
  repo?: string;
  /** Absolute recipe directories, in order. */
  recipes?: string[];
  /** Absolute. */
  cacheDir?: string;
  insecureRegistries?: string[];
  /** Shared step caches to read from / publish to (`oci:` paths made absolute). */
  cacheFrom?: string[];
  cacheTo?: string[];
  progress?: 'auto' | 'tty' | 'plain' | 'quiet';
  /** The top-level keys the file sets (for `nabla-build config`). */
  keys?: string[];
}

export function loadConfig(path: string): UserConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputFileError(
      path,
      undefined,
      undefined,
      `cannot read config: ${(err as Error).message}`,
      'check --config / NABLA_BUILD_CONFIG',
    );
  }
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError)
    throw new InputFileError(
      path,
      yamlError.linePos?.[0]?.line,
      undefined,
      `invalid YAML: ${yamlError.message.split('\n')[0]}`,
    );
  const js = yamlToJS(doc, path, text);
  const r = configSchema.safeParse(js ?? {});
  if (!r.success) {
    const issue = r.error.issues[0] as z.core.$ZodIssue;
    const problem =
      issue.code === 'unrecognized_keys'
        ? `unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : issue.message.replace(/^Invalid input: /, '');
    // An unknown key is reported on its own line, not on the line of the map that holds it.
    const at = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0] as string] : issue.path;
    throw new InputFileError(
      path,
      lineOf(doc, counter, at) ?? lineOf(doc, counter, issue.path),
      fieldName(issue.path) || undefined,
      problem,
    );
  }
  const c = r.data;
  const out: UserConfig = {
    mirrors: c.mirrors.map((m, i) => ({
      prefix: m.prefix,
      replacement: m.replace,
      origin: `${path}:${lineOf(doc, counter, ['mirrors', i]) ?? 1}`,
    })),
    allowLocal: c.allowLocal,
    overrides: Object.fromEntries(Object.entries(c.overrides).map(([k, v]) => [k, stripUndefined(v)])),
    overrideOrigins: Object.fromEntries(
      Object.keys(c.overrides).map((k) => [k, `${path}:${lineOf(doc, counter, ['overrides', k]) ?? 1}`]),
    ),
  };
  if (c.registry) out.registry = c.registry;
  if (c.namespace) out.namespace = c.namespace;
  const base = dirname(resolve(path));
  if (c.repo) out.repo = c.repo;
  if (c.recipes) out.recipes = (Array.isArray(c.recipes) ? c.recipes : [c.recipes]).map((d) => resolve(base, d));
  if (c.cacheDir) out.cacheDir = resolve(base, c.cacheDir);
  if (c.insecureRegistries) out.insecureRegistries = c.insecureRegistries;
  if (c.progress) out.progress = c.progress;
  const refs = (v: string | string[]) =>
    (Array.isArray(v) ? v : [v]).map((r) => (r.startsWith('oci:') ? `oci:${resolve(base, r.slice(4))}` : r));
  if (c.cacheFrom) out.cacheFrom = refs(c.cacheFrom);
  if (c.cacheTo) out.cacheTo = refs(c.cacheTo);
  out.keys = js && typeof js === 'object' ? Object.keys(js) : [];
  return out;
}

/** Drops keys whose value is undefined (optional fields of the model are absent, never undefined). */
export function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as {
    [K in keyof T]: Exclude<T[K], undefined>;
  };
}

/** Aliases a document may expand: far more than any recipe or config uses, far fewer than an alias bomb. */
const MAX_ALIASES = 1000;

/**
 * `doc.toJS()` for input files, with YAML alias expansion bounded: an alias bomb ("billion laughs") is a
 * located input error, never a resource exhaustion or an internal error.
 */
export function yamlToJS(doc: Document, display: string, text: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    const lines = text.split('\n');
    const i = lines.findIndex((l) => /(^|[\s[{,:-])\*[^\s,\]}]+/.test(l));
    throw new InputFileError(
      display,
      i >= 0 ? i + 1 : undefined,
      undefined,
      `YAML aliases expand too much (${(err as Error).message.toLowerCase()}); refusing the file`,
      'write the values out instead of nesting aliases',
    );
  }
}
