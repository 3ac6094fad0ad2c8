import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/**
 * Where `tool` is on `path` (an executable file), like `command -v`; undefined when it is not there. A child
 * started with `path` as its PATH finds the same file.
 */
export function onPath(tool: string, path: string): string | undefined {
  for (const d of path.split(delimiter)) {
    if (!d) continue;
    const p = join(d, tool);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}
