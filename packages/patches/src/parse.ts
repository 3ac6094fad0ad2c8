/**
 * Just enough of a unified-diff parser to know what a patch touches: the files (after `-p<strip>`), what kind of
 * change each is, and its hunks. Leading text (a `git format-patch` mail header, frankenlibc's
 * `commit/Author/Date` block) is skipped, as `patch` does.
 */

export interface PatchHunk {
  /** 1-based, per file, as `patch` numbers them in "Hunk #N". */
  index: number;
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  /** 1-based line of the `@@` header in the patch file. */
  patchLine: number;
}

export interface PatchTarget {
  /** The file `patch` changes, relative to the directory it runs in (after stripping). */
  path: string;
  /** For renames and copies: the source path. */
  oldPath?: string;
  kind: 'modify' | 'create' | 'delete' | 'rename' | 'copy';
  hunks: PatchHunk[];
  /** 1-based line of this file's header in the patch file. */
  patchLine: number;
}

/** Removes `strip` leading path components, as `patch -p<strip>` does (runs of slashes count as one). */
export function stripPath(name: string, strip: number): string {
  let s = name;
  for (let i = 0; i < strip; i++) {
    const m = /^[^/]*\/+/.exec(s);
    if (!m) return s;
    s = s.slice(m[0].length);
  }
  return s;
}

function unquote(name: string): string {
  if (!name.startsWith('"')) return name;
  const inner = name.slice(1, name.lastIndexOf('"'));
  return inner.replace(/\\(["\\tn]|[0-7]{3})/g, (_, c: string) => {
    if (c === 't') return '\t';
    if (c === 'n') return '\n';
    if (/^[0-7]{3}$/.test(c)) return String.fromCharCode(Number.parseInt(c, 8));
    return c;
  });
}

/** The file name of a `--- name\ttimestamp` / `+++ name` line; undefined for /dev/null. */
function headerName(rest: string): string | undefined {
  let name: string;
  const quoted = /^"(?:[^"\\]|\\.)*"/.exec(rest);
  if (quoted) {
    name = unquote(quoted[0]);
  } else {
    name = rest.split('\t')[0] ?? '';
    // `diff -u` without tabs separates the timestamp with two spaces.
    name = name.replace(/\s{2,}\d{4}-\d\d-\d\d .*$/, '').trimEnd();
  }
  return name === '/dev/null' ? undefined : name;
}

function gitNames(rest: string): [string, string] | undefined {
  // `diff --git a/x b/x`: names may be quoted; unquoted ones are split at the " b/" that makes both halves equal
  // when possible (paths with spaces), else at the last " b/".
  if (rest.startsWith('"')) {
    const m = /^("(?:[^"\\]|\\.)*")\s+(.*)$/.exec(rest);
    if (m?.[1] && m[2]) return [unquote(m[1]), unquote(m[2])];
    return undefined;
  }
  const parts = rest.split(' ');
  for (let i = 1; i < parts.length; i++) {
    const a = parts.slice(0, i).join(' ');
    const b = parts.slice(i).join(' ');
    if (a.replace(/^[^/]*\//, '') === b.replace(/^[^/]*\//, '')) return [a, b];
  }
  const i = rest.lastIndexOf(' ');
  return i > 0 ? [rest.slice(0, i), rest.slice(i + 1)] : undefined;
}

/** The files and hunks of a patch, paths stripped by `strip` components. */
export function parsePatch(text: string, strip: number): PatchTarget[] {
  const lines = text.split('\n');
  const out: PatchTarget[] = [];
  let cur: PatchTarget | undefined;
  let git:
    | { old?: string; new?: string; kind: PatchTarget['kind']; line: number; from?: string; to?: string }
    | undefined;

  const finishGit = () => {
    // A git section without ---/+++ (pure rename, mode change, binary): record it from the git header.
    if (git && !cur) {
      const path = git.to ?? git.new ?? git.old;
      if (path !== undefined) {
        out.push({
          path: stripPath(git.kind === 'delete' ? (git.old ?? path) : path, strip),
          ...(git.from !== undefined && (git.kind === 'rename' || git.kind === 'copy')
            ? { oldPath: stripPath(git.from, strip) }
            : {}),
          kind: git.kind,
          hunks: [],
          patchLine: git.line,
        });
      }
    }
    git = undefined;
    cur = undefined;
  };

  let i = 0;
  while (i < lines.length) {
    const line = lines[i] ?? '';
    if (line.startsWith('diff --git ')) {
      finishGit();
      const names = gitNames(line.slice('diff --git '.length));
      git = { kind: 'modify', line: i + 1, ...(names ? { old: names[0], new: names[1] } : {}) };
      i++;
      continue;
    }
    if (git && !cur) {
      if (line.startsWith('new file mode')) git.kind = 'create';
      else if (line.startsWith('deleted file mode')) git.kind = 'delete';
      else if (line.startsWith('rename from ')) {
        git.kind = 'rename';
        git.from = `a/${line.slice('rename from '.length)}`;
      } else if (line.startsWith('rename to ')) git.to = `b/${line.slice('rename to '.length)}`;
      else if (line.startsWith('copy from ')) {
        git.kind = 'copy';
        git.from = `a/${line.slice('copy from '.length)}`;
      } else if (line.startsWith('copy to ')) git.to = `b/${line.slice('copy to '.length)}`;
    }
    if (line.startsWith('--- ') && (lines[i + 1] ?? '').startsWith('+++ ')) {
      const oldName = headerName(line.slice(4));
      const newName = headerName((lines[i + 1] ?? '').slice(4));
      let kind: PatchTarget['kind'] = git?.kind ?? 'modify';
      if (oldName === undefined && newName !== undefined) kind = 'create';
      else if (newName === undefined && oldName !== undefined) kind = 'delete';
      const chosen = kind === 'delete' ? oldName : newName;
      if (chosen === undefined) {
        i += 2;
        continue;
      }
      if (git && cur) finishGit();
      cur = {
        path: stripPath(chosen, strip),
        kind,
        hunks: [],
        patchLine: git?.line ?? i + 1,
        ...((kind === 'rename' || kind === 'copy') && git?.from !== undefined
          ? { oldPath: stripPath(git.from, strip) }
          : {}),
      };
      out.push(cur);
      i += 2;
      continue;
    }
    const h = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (h && cur) {
      const hunk: PatchHunk = {
        index: cur.hunks.length + 1,
        oldStart: Number(h[1]),
        oldLines: h[2] === undefined ? 1 : Number(h[2]),
        newStart: Number(h[3]),
        newLines: h[4] === undefined ? 1 : Number(h[4]),
        patchLine: i + 1,
      };
      cur.hunks.push(hunk);
      // Skip the body by counting, so a removed line that reads "-- x" is never taken for a header.
      let oldLeft = hunk.oldLines;
      let newLeft = hunk.newLines;
      i++;
      while (i < lines.length && (oldLeft > 0 || newLeft > 0)) {
        const b = lines[i] ?? '';
        const c = b[0];
        if (c === ' ' || b === '') {
          oldLeft--;
          newLeft--;
        } else if (c === '-') oldLeft--;
        else if (c === '+') newLeft--;
        else if (c !== '\\') break;
        i++;
      }
      continue;
    }
    if (!git && cur && !line.startsWith('\\')) {
      // Text after a plain (non-git) file section ends it.
      if (!h && line.trim() !== '' && !line.startsWith('@@')) cur = undefined;
    }
    i++;
  }
  finishGit();
  return out;
}

/** The deepest of `trees` (paths relative to the same root, `''` = root) that contains `file`. */
export function subtreeOf(file: string, trees: string[]): string | undefined {
  let best: string | undefined;
  for (const t of trees) {
    const norm = t.replace(/\/+$/, '');
    if (norm === '' || file === norm || file.startsWith(`${norm}/`)) {
      if (best === undefined || norm.length > best.length) best = norm;
    }
  }
  return best;
}
