import { isMap, isScalar, isSeq, type LineCounter, type Document, type Node as YamlNode } from 'yaml';

/**
 * Maps a path inside a parsed YAML document (`['build', 'commands', 0, 'run']`) to a 1-based line. When the
 * path does not exist (a missing field), the line of the deepest existing parent is returned.
 */
export function lineOf(doc: Document, counter: LineCounter, path: readonly PropertyKey[]): number | undefined {
  let node: unknown = doc.contents;
  let line = rangeLine(node, counter);
  for (const key of path) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key));
      if (pair) {
        // Prefer the key's line: that is where the user reads the field name.
        line = rangeLine(pair.key, counter) ?? line;
        next = pair.value;
      }
    } else if (isSeq(node) && typeof key === 'number') {
      next = node.items[key];
      line = rangeLine(next, counter) ?? line;
    }
    if (next === undefined || next === null) return line;
    node = next;
  }
  return line;
}

function rangeLine(node: unknown, counter: LineCounter): number | undefined {
  const range = (node as YamlNode | undefined)?.range;
  if (!range) return undefined;
  return counter.linePos(range[0]).line;
}

/** `build.commands[0].run` — how a field is named in messages. */
export function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out;
}
