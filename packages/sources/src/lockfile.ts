import { readFile } from 'node:fs/promises';
import { InputFileError, type LockedGit, type LockedTarball, type Lockfile } from '@nabla-build/model';
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
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const lineOf = (node: Node | null | undefined, fallback = 1) =>
    node?.range ? lc.linePos(node.range[0]).line : fallback;
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    const line = err?.linePos?.[0]?.line ?? (err ? lc.linePos(err.pos[0]).line : undefined);
    throw new InputFileError(
      file,
      line,
      undefined,
      `not valid YAML: ${err?.message.split('\n')[0] ?? 'parse error'}`,
      'run `nabla-build lock` to rewrite it',
    );
  }
  const fail = (node: Node | null | undefined, field: string, problem: string): never => {
    throw new InputFileError(file, lineOf(node), field, problem, 'run `nabla-build lock` to rewrite it');
  };
  const root = doc.contents;
  if (!isMap(root)) return fail(root, '(top level)', 'must be a mapping with version, git, tarballs and patches');

  const entries = (map: YAMLMap, field: string, allowed?: string[]) => {
    const out: { key: string; keyNode: Node; value: Node | null }[] = [];
    for (const pair of map.items) {
      const k = pair.key as Node | null;
      if (!isScalar(k) || (typeof k.value !== 'string' && typeof k.value !== 'number'))
        fail(k, field, 'keys must be strings');
      const key = String((k as { value: unknown }).value);
      if (allowed && !allowed.includes(key))
        fail(k, field ? `${field}.${key}` : key, `unknown field (expected one of: ${allowed.join(', ')})`);
      out.push({ key, keyNode: k as Node, value: (pair.value as Node | null) ?? null });
    }
    return out;
  };
  const asMap = (node: Node | null, field: string): YAMLMap => {
    if (node === null || (isScalar(node) && node.value === null)) return new YAMLMap();
    if (!isMap(node)) fail(node, field, 'must be a mapping');
    return node as YAMLMap;
  };
  const str = (node: Node | null, field: string, re?: RegExp, what?: string): string => {
    if (!isScalar(node) || typeof node.value !== 'string' || node.value === '')
      fail(node, field, 'must be a non-empty string');
    const v = (node as { value: string }).value;
    if (re && !re.test(v)) fail(node, field, `\`${v}\` is not ${what}`);
    return v;
  };
  const need = (list: { key: string; value: Node | null }[], key: string, parent: Node, field: string) => {
    const e = list.find((x) => x.key === key);
    if (!e) fail(parent, field, `missing field \`${key}\``);
    return (e as { value: Node | null }).value;
  };

  const top = entries(root, '', ['version', 'git', 'tarballs', 'patches']);
  const version = need(top, 'version', root, 'version');
  if (!isScalar(version) || version.value !== 1)
    fail(version, 'version', 'must be 1 (this nabla-build reads lockfile version 1)');

  const lock: Lockfile = { version: 1, git: {}, tarballs: {}, patches: {} };
  const gitNode = top.find((e) => e.key === 'git')?.value ?? null;
  for (const { key: name, keyNode, value } of entries(asMap(gitNode, 'git'), 'git')) {
    const f = `git.${name}`;
    const m = asMap(value, f);
    if (!isMap(value)) fail(keyNode, f, 'must be a mapping with git, rev and submodules');
    const es = entries(m, f, ['git', 'rev', 'submodules']);
    const entry: LockedGit = {
      git: str(need(es, 'git', value as Node, `${f}.git`), `${f}.git`),
      rev: str(need(es, 'rev', value as Node, `${f}.rev`), `${f}.rev`, FULL_SHA, 'a full 40-hex commit SHA'),
      submodules: {},
    };
    const subs = es.find((e) => e.key === 'submodules')?.value ?? null;
    for (const s of entries(asMap(subs, `${f}.submodules`), `${f}.submodules`)) {
      const sf = `${f}.submodules.${s.key}`;
      if (!isMap(s.value)) fail(s.value ?? s.keyNode, sf, 'must be a mapping with git and rev');
      const ses = entries(s.value as YAMLMap, sf, ['git', 'rev']);
      entry.submodules[s.key] = {
        git: str(need(ses, 'git', s.value as Node, `${sf}.git`), `${sf}.git`),
        rev: str(need(ses, 'rev', s.value as Node, `${sf}.rev`), `${sf}.rev`, FULL_SHA, 'a full 40-hex commit SHA'),
      };
    }
    lock.git[name] = entry;
  }
  const tbNode = top.find((e) => e.key === 'tarballs')?.value ?? null;
  for (const { key: name, keyNode, value } of entries(asMap(tbNode, 'tarballs'), 'tarballs')) {
    const f = `tarballs.${name}`;
    if (!isMap(value)) fail(value ?? keyNode, f, 'must be a mapping with url and sha256');
    const es = entries(value as YAMLMap, f, ['url', 'sha256']);
    const entry: LockedTarball = {
      url: str(need(es, 'url', value as Node, `${f}.url`), `${f}.url`),
      sha256: str(
        need(es, 'sha256', value as Node, `${f}.sha256`),
        `${f}.sha256`,
        SHA256_HEX,
        'a sha256 (64 lower-case hex digits)',
      ),
    };
    lock.tarballs[name] = entry;
  }
  const pNode = top.find((e) => e.key === 'patches')?.value ?? null;
  for (const { key, value } of entries(asMap(pNode, 'patches'), 'patches')) {
    lock.patches[key] = str(value, `patches.${key}`, SHA256_HEX, 'a sha256 (64 lower-case hex digits)');
  }
  return lock;
}

function sorted<T>(o: Record<string, T>): [string, T][] {
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
