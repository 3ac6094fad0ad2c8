import { readFile } from 'node:fs/promises';
import { InputFileError, type LockedGit, type Lockfile } from '@nabla-build/model';
import { isMap, isScalar, LineCounter, type Node, parseDocument, stringify, YAMLMap } from 'yaml';
import { FULL_SHA, SHA256_HEX } from './context.js';
import { writeFileAtomic } from '@nabla-build/fsio';

const HEADER = '# Written by `nabla-build lock`. Do not edit: change the recipes and run `nabla-build lock` again.\n';

/**
 * Reads and validates a lockfile. Any problem is an InputFileError naming `file:line` and the field
 * (`git.frankenlibc.rev`). Unknown keys are errors too, so a typo never silently drops a pin.
 */
export async function readLockfile(path: string): Promise<Lockfile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new InputFileError(
      path,
      undefined,
      undefined,
      `cannot read the lockfile (${code ?? String(e)})`,
      code === 'ENOENT' ? 'run `nabla-build lock` to create it' : undefined,
    );
  }
  return parseLockfile(text, path);
}

/** Parses lockfile text; `file` is only used in error messages. */
export function parseLockfile(text: string, file: string): Lockfile {
  const y = new LockYaml(text, file);
  const root = y.root();
  const top = y.entries(root, '', ['version', 'git', 'tarballs', 'patches']);
  const version = y.need(top, 'version', root, 'version');
  if (!isScalar(version) || version.value !== 1)
    y.fail(version, 'version', 'must be 1 (this nabla-build reads lockfile version 1)');
  const section = (key: string) => top.find((e) => e.key === key)?.value ?? null;
  return {
    version: 1,
    git: readGitPins(y, section('git')),
    tarballs: readTarballPins(y, section('tarballs')),
    patches: readPatchDigests(y, section('patches')),
  };
}

/** `git:`: each source's URL, commit and the same for every submodule (by full path). */
function readGitPins(y: LockYaml, node: Node | null): Lockfile['git'] {
  const git: Lockfile['git'] = {};
  for (const { key: name, keyNode, value } of y.entries(y.asMap(node, 'git'), 'git')) {
    const f = `git.${name}`;
    const m = y.asMap(value, f);
    if (!isMap(value)) y.fail(keyNode, f, 'must be a mapping with git, rev and submodules');
    const es = y.entries(m, f, ['git', 'rev', 'submodules']);
    const entry: LockedGit = {
      git: y.str(y.need(es, 'git', value as Node, `${f}.git`), `${f}.git`),
      rev: y.str(y.need(es, 'rev', value as Node, `${f}.rev`), `${f}.rev`, FULL_SHA, 'a full 40-hex commit SHA'),
      submodules: {},
    };
    const subs = es.find((e) => e.key === 'submodules')?.value ?? null;
    for (const s of y.entries(y.asMap(subs, `${f}.submodules`), `${f}.submodules`)) {
      const sf = `${f}.submodules.${s.key}`;
      if (!isMap(s.value)) y.fail(s.value ?? s.keyNode, sf, 'must be a mapping with git and rev');
      const ses = y.entries(s.value as YAMLMap, sf, ['git', 'rev']);
      entry.submodules[s.key] = {
        git: y.str(y.need(ses, 'git', s.value as Node, `${sf}.git`), `${sf}.git`),
        rev: y.str(y.need(ses, 'rev', s.value as Node, `${sf}.rev`), `${sf}.rev`, FULL_SHA, 'a full 40-hex commit SHA'),
      };
    }
    git[name] = entry;
  }
  return git;
}

/** `tarballs:`: each tarball's URL and sha256. */
function readTarballPins(y: LockYaml, node: Node | null): Lockfile['tarballs'] {
  const tarballs: Lockfile['tarballs'] = {};
  for (const { key: name, keyNode, value } of y.entries(y.asMap(node, 'tarballs'), 'tarballs')) {
    const f = `tarballs.${name}`;
    if (!isMap(value)) y.fail(value ?? keyNode, f, 'must be a mapping with url and sha256');
    const es = y.entries(value as YAMLMap, f, ['url', 'sha256']);
    tarballs[name] = {
      url: y.str(y.need(es, 'url', value as Node, `${f}.url`), `${f}.url`),
      sha256: y.str(y.need(es, 'sha256', value as Node, `${f}.sha256`), `${f}.sha256`, SHA256_HEX, SHA256_WHAT),
    };
  }
  return tarballs;
}

/** `patches:`: the digest of each project patch series, by its directory. */
function readPatchDigests(y: LockYaml, node: Node | null): Lockfile['patches'] {
  const patches: Lockfile['patches'] = {};
  for (const { key, value } of y.entries(y.asMap(node, 'patches'), 'patches'))
    patches[key] = y.str(value, `patches.${key}`, SHA256_HEX, SHA256_WHAT);
  return patches;
}

const SHA256_WHAT = 'a sha256 (64 lower-case hex digits)';

/** The lockfile's YAML document with line numbers: every problem is `file:line: field: problem`. */
class LockYaml {
  private readonly lc = new LineCounter();
  private readonly doc;

  constructor(
    text: string,
    private readonly file: string,
  ) {
    this.doc = parseDocument(text, { lineCounter: this.lc, prettyErrors: false, uniqueKeys: true });
  }

  /** The top-level mapping (YAML errors first). */
  root(): YAMLMap {
    const err = this.doc.errors[0];
    if (err) {
      const line = err.linePos?.[0]?.line ?? this.lc.linePos(err.pos[0]).line;
      throw new InputFileError(
        this.file,
        line,
        undefined,
        `not valid YAML: ${err.message.split('\n')[0] ?? 'parse error'}`,
        'run `nabla-build lock` to rewrite it',
      );
    }
    const root = this.doc.contents;
    if (!isMap(root))
      return this.fail(root, '(top level)', 'must be a mapping with version, git, tarballs and patches');
    return root;
  }

  fail(node: Node | null | undefined, field: string, problem: string): never {
    const line = node?.range ? this.lc.linePos(node.range[0]).line : 1;
    throw new InputFileError(this.file, line, field, problem, 'run `nabla-build lock` to rewrite it');
  }

  entries(map: YAMLMap, field: string, allowed?: string[]): { key: string; keyNode: Node; value: Node | null }[] {
    const out: { key: string; keyNode: Node; value: Node | null }[] = [];
    for (const pair of map.items) {
      const k = pair.key as Node | null;
      if (!isScalar(k) || (typeof k.value !== 'string' && typeof k.value !== 'number'))
        this.fail(k, field, 'keys must be strings');
      const key = String((k as { value: unknown }).value);
      if (allowed && !allowed.includes(key))
        this.fail(k, field ? `${field}.${key}` : key, `unknown field (expected one of: ${allowed.join(', ')})`);
      out.push({ key, keyNode: k as Node, value: (pair.value as Node | null) ?? null });
    }
    return out;
  }

  asMap(node: Node | null, field: string): YAMLMap {
    if (node === null || (isScalar(node) && node.value === null)) return new YAMLMap();
    if (!isMap(node)) this.fail(node, field, 'must be a mapping');
    return node as YAMLMap;
  }

  str(node: Node | null, field: string, re?: RegExp, what?: string): string {
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '')
      this.fail(node, field, 'must be a non-empty string');
    const v = (node as { value: string }).value;
    if (re && !re.test(v)) this.fail(node, field, `\`${v}\` is not ${what}`);
    return v;
  }

  need(list: { key: string; value: Node | null }[], key: string, parent: Node, field: string): Node | null {
    const e = list.find((x) => x.key === key);
    if (!e) this.fail(parent, field, `missing field \`${key}\``);
    return (e as { value: Node | null }).value;
  }
}

/** The entries of `o` in byte order of their keys. */
export function sorted<T>(o: Record<string, T>): [string, T][] {
  return Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The canonical text of a lockfile: fixed field order, every map sorted by key, no line folding. */
export function formatLockfile(lock: Lockfile): string {
  const data = {
    version: 1,
    git: Object.fromEntries(
      sorted(lock.git).map(([name, g]) => [
        name,
        {
          git: g.git,
          rev: g.rev,
          submodules: Object.fromEntries(sorted(g.submodules).map(([p, s]) => [p, { git: s.git, rev: s.rev }])),
        },
      ]),
    ),
    tarballs: Object.fromEntries(sorted(lock.tarballs).map(([n, t]) => [n, { url: t.url, sha256: t.sha256 }])),
    patches: Object.fromEntries(sorted(lock.patches)),
  };
  return HEADER + stringify(data, { lineWidth: 0, minContentWidth: 0, indent: 2 });
}

/** Writes the lockfile atomically (temp file + rename) in canonical form: same content → same bytes. */
export async function writeLockfile(path: string, lock: Lockfile): Promise<void> {
  await writeFileAtomic(path, formatLockfile(lock));
}
