import { z } from 'zod';

/**
 * The one schema of recipes/*.yaml. Everything a build needs to know about an upstream lives in these files;
 * TypeScript holds no URL, revision, patch list, artifact path or image field.
 */

export const sha1 = z.string().regex(/^[0-9a-f]{40}$/, 'must be a full 40-hex commit SHA');
export const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be a 64-hex sha256');
const name = z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'must be lower-case letters, digits, ".", "_" or "-"');
const relPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), 'must be a relative path without ".."');
const absPath = z.string().regex(/^\//, 'must be an absolute path in the image');
/**
 * A git remote as a recipe may name it: `https://`, `ssh://`, `git://`, scp-like `user@host:path`, or a local
 * `file://` URL / absolute path (usable only with the config's `allowLocal`, checked when the project loads).
 * Never option-like (`-u…`, which git would read as a flag), never a transport helper (`ext::sh -c …`, `fd::`),
 * never plain `http://` (unauthenticated, and git has no pin for the transport).
 */
export const gitUrl = z
  .string()
  .min(1)
  .superRefine((u, ctx) => {
    const bad = (message: string) => ctx.addIssue({ code: 'custom', message });
    if (/[\s\0]/.test(u)) return bad('a git URL must not contain whitespace or NUL');
    if (u.startsWith('-')) return bad('a git URL must not start with "-" (git would read it as an option)');
    if (/^[A-Za-z][A-Za-z0-9+.-]*::/.test(u)) return bad('git transport helpers (ext::, fd::, …) are not allowed');
    if (/^(https|ssh|git|git\+ssh|ssh\+git):\/\/[^/]+/.test(u) || /^file:\/\//.test(u) || u.startsWith('/')) return;
    if (/^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]/.test(u) || /^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:\//.test(u)) return;
    return bad(
      'must be an https://, ssh://, git:// or user@host:path git URL (file:// and local paths need allowLocal)',
    );
  });
/** Tarball URLs: checked by sha256, so http is fine; file:// needs allowLocal (checked when the project loads). */
const tarballUrl = z.url().refine((u) => /^(https?|file):\/\//.test(u), 'must be an https://, http:// or file:// URL');

const envMap = z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'invalid variable name'), z.string());

const submodule: z.ZodType<SubmoduleInput> = z.lazy(() =>
  z.strictObject({
    path: relPath,
    git: gitUrl,
    rev: sha1,
    clone: z.enum(['submodule', 'full']).default('submodule'),
    sparse: z.array(relPath).min(1).optional(),
    submodules: z.array(submodule).default([]),
  }),
);
export interface SubmoduleInput {
  path: string;
  git: string;
  rev: string;
  clone: 'submodule' | 'full';
  sparse?: string[] | undefined;
  submodules: SubmoduleInput[];
}

export const gitSourceSchema = z.strictObject({
  name,
  git: gitUrl,
  branch: z.string().optional(),
  rev: sha1,
  submodules: z.array(submodule).default([]),
  sparse: z.array(relPath).min(1).optional(),
});

export const tarballSourceSchema = z.strictObject({
  name,
  file: z.string().regex(/^[^/]+$/, 'must be a file name without "/"'),
  urls: z.array(tarballUrl).min(1),
  sha256,
  placeIn: relPath.optional(),
});

export const sourcesFileSchema = z.strictObject({
  kind: z.literal('sources'),
  sources: z.array(z.union([gitSourceSchema, tarballSourceSchema])),
});

const command = z.strictObject({
  run: z.array(z.string().min(1)).min(1),
  cwd: relPath.default('.'),
  env: envMap.default({}),
  unset: z.array(z.string()).default([]),
});

const patchSeries = z.strictObject({
  from: z.enum(['upstream', 'project']),
  dir: relPath,
  applyIn: z.string().default('.'),
  strip: z.number().int().min(0).default(1),
  maxFuzz: z.number().int().min(0).default(0),
  maxOffset: z.number().int().min(0).default(50),
  only: z
    .array(z.string().regex(/^[^/]+\.patch$/, 'must be a *.patch file name in dir'))
    .min(1)
    .optional(),
});

const deviceName = z.string().regex(/^[A-Za-z0-9]{1,67}$/, 'must be 1-67 letters or digits (a Solo5 device name)');

export const toolchainSchema = z.strictObject({
  kind: z.literal('toolchain'),
  name,
  version: z.string().min(1),
  description: z.string().default(''),
  tree: name,
  checkout: z
    .strictObject({
      paths: z.array(relPath).min(1).optional(),
      submodules: z.array(relPath).optional(),
    })
    .optional(),
  uses: z.array(z.strictObject({ toolchain: name, path: relPath })).default([]),
  sources: z.array(name).min(1),
  patches: z.array(patchSeries).default([]),
  commands: z.array(command).min(1),
  outputs: z.array(relPath).min(1),
  facts: z.record(z.string(), z.string()).default({}),
  provides: z
    .strictObject({ tender: relPath.optional(), elftool: relPath.optional(), bin: relPath.optional() })
    .default({}),
  phases: z.array(z.strictObject({ match: z.string(), phase: z.string() })).default([]),
  hints: z.array(z.strictObject({ match: z.string(), hint: z.string() })).default([]),
});

const image = z.strictObject({
  repository: z.string().regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'must be a valid repository name'),
  entrypoint: z.array(z.string()).min(1),
  cmd: z.array(z.string()).default([]),
  env: envMap.default({}),
  copy: z.array(z.strictObject({ from: relPath, to: absPath })).min(1),
  labels: z.record(z.string(), z.string()).default({}),
  workdir: absPath.optional(),
  exposedPorts: z.array(z.string().regex(/^\d+\/(tcp|udp)$/, 'must look like 80/tcp')).default([]),
});

export const targetSchema = z.strictObject({
  kind: z.literal('target'),
  name,
  version: z.string().min(1),
  description: z.string().default(''),
  license: z.string().optional(),
  homepage: z.url().optional(),
  toolchain: name,
  sources: z.array(name).default([]),
  patches: z.array(patchSeries).default([]),
  requires: z.array(z.string()).default([]),
  build: z.strictObject({
    tree: name,
    configMk: z.record(z.string(), z.string()).default({}),
    commands: z.array(command).default([]),
  }),
  manifest: z
    .strictObject({
      file: relPath,
      block: z.array(deviceName).default([]),
      net: z.array(deviceName).default([]),
    })
    .optional(),
  artifacts: z.array(z.strictObject({ from: relPath, to: relPath })).min(1),
  image: image.optional(),
  smoke: z
    .strictObject({
      args: z.array(z.string()).default([]),
      expect: z.string().optional(),
      probe: z.strictObject({ kind: z.enum(['redis-ping', 'http-get']), port: z.number().int() }).optional(),
      timeoutSeconds: z.number().positive().default(30),
    })
    .optional(),
});

/** Any file under recipes/: the discriminant is `kind`. */
export const recipeFileSchema = z.discriminatedUnion('kind', [sourcesFileSchema, toolchainSchema, targetSchema]);

export type RecipeFileInput = z.infer<typeof recipeFileSchema>;

/** JSON Schema of recipe files, for editors (`# yaml-language-server: $schema=./recipe.schema.json`). */
export function recipeJsonSchema(): unknown {
  return z.toJSONSchema(recipeFileSchema, { io: 'input', unrepresentable: 'any' });
}
