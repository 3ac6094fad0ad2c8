import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  type GitSourceSpec,
  InputFileError,
  type RecipeSet,
  type SourceSpec,
  type SubmoduleSpec,
  type TargetRecipe,
  type ToolchainRecipe,
} from '@nabla-build/model';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { stripUndefined, yamlToJS } from './config.js';
import type { z } from 'zod';
import { fieldName, lineOf } from './locate.js';
import { recipeFileSchema, type RecipeFileInput, type SubmoduleInput } from './schema.js';

interface ParsedFile {
  /** Path shown in messages: relative to the current directory when that is shorter. */
  display: string;
  doc: Document;
  counter: LineCounter;
  value: RecipeFileInput;
}

/**
 * Loads and validates every `*.yaml` in a recipes directory. Errors name file, line and field:
 * `recipes/python3.yaml:12: build.commands[0].run: must contain at least 1 item`.
 */
export function loadRecipes(
  recipesDirs: string | string[],
  patchesDir = join(([recipesDirs].flat()[0] as string) ?? '.', '..', 'patches'),
): RecipeSet {
  // Overlays: several directories, later ones adding or replacing sources, toolchains and targets by name.
  // Within one directory a name defined twice is still an error.
  const layerOf = new Map<ParsedFile, number>();
  const files = [recipesDirs].flat().flatMap((dir, layer) =>
    listYaml(dir).map((f) => {
      const file = parseRecipeFile(join(dir, f));
      layerOf.set(file, layer);
      return file;
    }),
  );
  const sameLayer = (a: ParsedFile, b: ParsedFile) => layerOf.get(a) === layerOf.get(b);
  const sources = new Map<string, { spec: SourceSpec; file: ParsedFile; index: number }>();
  for (const file of files) {
    if (file.value.kind !== 'sources') continue;
    file.value.sources.forEach((s, index) => {
      const prior = sources.get(s.name);
      if (prior && sameLayer(prior.file, file))
        fail(file, ['sources', index, 'name'], `source "${s.name}" is also defined in ${prior.file.display}`);
      sources.set(s.name, { spec: toSourceSpec(s), file, index });
    });
  }
  const set: RecipeSet = { toolchains: new Map(), targets: new Map(), patchesDir };
  const names = new Map<string, ParsedFile>();
  const resolveSources = (file: ParsedFile, list: string[]): SourceSpec[] =>
    list.map((n, i) => {
      const found = sources.get(n);
      if (!found)
        fail(file, ['sources', i], `unknown source "${n}" (defined sources: ${[...sources.keys()].join(', ')})`);
      return found.spec;
    });
  for (const file of files) {
    const v = file.value;
    if (v.kind === 'sources') continue;
    const prior = names.get(v.name);
    if (prior && sameLayer(prior, file)) fail(file, ['name'], `recipe "${v.name}" is also defined in ${prior.display}`);
    names.set(v.name, file);
    set.toolchains.delete(v.name);
    set.targets.delete(v.name);
    if (v.kind === 'toolchain') {
      const srcs = resolveSources(file, v.sources);
      if (!srcs.some((s) => s.name === v.tree && s.kind === 'git'))
        fail(file, ['tree'], `"${v.tree}" must be one of this recipe's git sources`);
      const recipe: ToolchainRecipe = {
        kind: 'toolchain',
        name: v.name,
        file: file.display,
        description: v.description,
        version: v.version,
        tree: v.tree,
        uses: v.uses,
        sources: srcs,
        patches: v.patches.map(stripUndefined),
        commands: v.commands.map((c) => ({ argv: c.run, cwd: c.cwd, env: c.env, unset: c.unset })),
        phases: v.phases,
        hints: v.hints,
        outputs: v.outputs,
        facts: v.facts,
        provides: stripUndefined(v.provides),
      };
      if (v.checkout) {
        const tree = srcs.find((s) => s.name === v.tree) as GitSourceSpec;
        v.checkout.submodules?.forEach((p, i) => {
          if (!tree.submodules.some((s) => s.path === p))
            fail(
              file,
              ['checkout', 'submodules', i],
              `"${p}" is not a submodule of source ${tree.name} (${tree.submodules.map((s) => s.path).join(', ')})`,
            );
        });
        recipe.checkout = stripUndefined(v.checkout);
      }
      checkRegexes(file, recipe);
      set.toolchains.set(v.name, recipe);
    } else {
      const srcs = resolveSources(file, v.sources);
      if (v.build.tree !== 'toolchain' && !srcs.some((s) => s.name === v.build.tree && s.kind === 'git'))
        fail(file, ['build', 'tree'], `"${v.build.tree}" must be "toolchain" or one of this recipe's git sources`);
      const artifactNames = new Set(v.artifacts.map((a) => a.to));
      v.image?.copy.forEach((c, i) => {
        const head = c.from.split('/')[0] ?? '';
        if (!artifactNames.has(head) && !artifactNames.has(c.from))
          fail(
            file,
            ['image', 'copy', i, 'from'],
            `"${c.from}" is not under an artifact (${[...artifactNames].join(', ')})`,
          );
      });
      const recipe: TargetRecipe = {
        kind: 'target',
        name: v.name,
        file: file.display,
        description: v.description,
        version: v.version,
        toolchain: v.toolchain,
        sources: srcs,
        patches: v.patches.map(stripUndefined),
        build: {
          tree: v.build.tree,
          configMk: v.build.configMk,
          commands: v.build.commands.map((c) => ({ argv: c.run, cwd: c.cwd, env: c.env, unset: c.unset })),
        },
        artifacts: v.artifacts,
        requires: v.requires,
        ...(v.manifest ? { manifest: v.manifest } : {}),
        ...(v.license ? { license: v.license } : {}),
        ...(v.homepage ? { homepage: v.homepage } : {}),
        ...(v.image ? { image: { ...v.image } } : {}),
        ...(v.smoke ? { smoke: { ...v.smoke } } : {}),
      };
      set.targets.set(v.name, recipe);
    }
  }
  for (const c of set.toolchains.values()) {
    const file = names.get(c.name) as ParsedFile;
    c.uses.forEach((u, i) => {
      if (!set.toolchains.has(u.toolchain) || u.toolchain === c.name)
        fail(
          file,
          ['uses', i, 'toolchain'],
          `unknown toolchain "${u.toolchain}" (other toolchains: ${[...set.toolchains.keys()].filter((n) => n !== c.name).join(', ') || 'none'})`,
        );
    });
    // A cycle of `uses` could never be built.
    const seen: string[] = [];
    const walk = (n: string): void => {
      if (seen.includes(n)) fail(file, ['uses'], `toolchains use each other: ${[...seen, n].join(' → ')}`);
      seen.push(n);
      for (const u of set.toolchains.get(n)?.uses ?? []) walk(u.toolchain);
      seen.pop();
    };
    walk(c.name);
  }
  for (const t of set.targets.values()) {
    if (!set.toolchains.has(t.toolchain)) {
      const file = names.get(t.name) as ParsedFile;
      fail(file, ['toolchain'], `unknown toolchain "${t.toolchain}" (known: ${[...set.toolchains.keys()].join(', ')})`);
    }
  }
  return set;
}

/** Parses and validates one recipe file; throws InputFileError with file:line:field. */
export function parseRecipeFile(path: string): ParsedFile {
  const display = displayPath(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new InputFileError(display, undefined, undefined, `cannot read: ${(err as Error).message}`);
  }
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const line = counter.linePos(yamlError.pos[0]).line;
    throw new InputFileError(display, line, undefined, `invalid YAML: ${yamlError.message.split('\n')[0]}`);
  }
  const result = recipeFileSchema.safeParse(yamlToJS(doc, display, text));
  const file = { display, doc, counter } as ParsedFile;
  if (!result.success) {
    const issue = pickIssue(result.error.issues);
    fail(file, issue.path, describeIssue(issue));
  }
  file.value = result.data;
  return file;
}

function pickIssue(issues: z.core.$ZodIssue[]): z.core.$ZodIssue {
  const first = issues[0] as z.core.$ZodIssue;
  // A mistyped field shows up as an unknown key plus a missing one: report the key the user wrote.
  const unknown = issues.find((i) => i.code === 'unrecognized_keys');
  if (unknown && unknown.code === 'unrecognized_keys') {
    const key = unknown.keys[0] as string;
    const missing = issues
      .filter(
        (i) =>
          i.code === 'invalid_type' &&
          i.path.length === unknown.path.length + 1 &&
          i.message.includes('received undefined'),
      )
      .map((i) => String(i.path[i.path.length - 1]));
    const guess = missing.find((m) => similar(m, key));
    return {
      ...unknown,
      path: [...unknown.path, key],
      message: `unknown field${guess ? ` (did you mean "${guess}"?)` : ''}`,
    } as z.core.$ZodIssue;
  }
  if (first.code !== 'invalid_union' || first.errors.length === 0) return first;
  // A union reports every branch; the branch with the fewest problems is the one the user meant.
  const best = [...first.errors].sort((a, b) => a.length - b.length)[0] ?? [];
  if (best.length === 0) return first;
  const inner = pickIssue(best);
  return { ...inner, path: [...first.path, ...inner.path] };
}

/** Edit distance <= 2: close enough to suggest. */
function similar(a: string, b: string): boolean {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const prev = d[i - 1] as number[];
      row[j] = Math.min(
        (prev[j] as number) + 1,
        (row[j - 1] as number) + 1,
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
  return ((d[a.length] as number[])[b.length] as number) <= 2;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && issue.message.includes('received undefined')) return 'is required';
  if (issue.code === 'invalid_type')
    return issue.message.replace(/^Invalid input: /, '').concat(' (quote the value in YAML)');
  if (issue.code === 'unrecognized_keys') return issue.message;
  return issue.message.replace(/^Invalid input: /, '');
}

function fail(file: ParsedFile, path: readonly PropertyKey[], problem: string): never {
  const line = lineOf(file.doc, file.counter, path);
  throw new InputFileError(
    file.display,
    line,
    fieldName(path) || undefined,
    problem,
    'fix the recipe, then run `nabla-build list` to check it',
  );
}

function checkRegexes(file: ParsedFile, recipe: ToolchainRecipe): void {
  for (const [key, list] of [
    ['phases', recipe.phases],
    ['hints', recipe.hints],
  ] as const) {
    list.forEach((entry, i) => {
      try {
        new RegExp(entry.match);
      } catch (err) {
        fail(file, [key, i, 'match'], `invalid regular expression: ${(err as Error).message}`);
      }
    });
  }
}

function toSourceSpec(s: Extract<RecipeFileInput, { kind: 'sources' }>['sources'][number]): SourceSpec {
  if ('git' in s) {
    const spec: GitSourceSpec = {
      kind: 'git',
      name: s.name,
      git: s.git,
      rev: s.rev,
      submodules: s.submodules.map(toSubmodule),
    };
    if (s.branch) spec.branch = s.branch;
    if (s.sparse) spec.sparse = s.sparse;
    return spec;
  }
  return {
    kind: 'tarball',
    name: s.name,
    urls: s.urls,
    sha256: s.sha256,
    file: s.file,
    ...(s.placeIn ? { placeIn: s.placeIn } : {}),
  };
}

function toSubmodule(s: SubmoduleInput): SubmoduleSpec {
  return { ...stripUndefined(s), submodules: s.submodules.map(toSubmodule) };
}

function listYaml(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (err) {
    throw new InputFileError(
      displayPath(dir),
      undefined,
      undefined,
      `cannot read the recipes directory: ${(err as Error).message}`,
      'pass --recipes <dir> or run from the nabla-build checkout',
    );
  }
  return entries.filter((f) => /\.ya?ml$/.test(f)).sort();
}

function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && rel.length < path.length ? rel : path;
}
