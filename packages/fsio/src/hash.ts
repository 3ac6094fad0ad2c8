/** sha256 of text, of a file (streamed, or read at once for small files) and of a directory tree. */
import { createHash } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

export function sha256Text(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The file's sha256 (hex), streamed. */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** The file's sha256 (hex), read at once: for small files on a path that must stay synchronous. */
export function sha256FileSync(path: string): string {
  return sha256Text(readFileSync(path));
}

/**
 * One digest of a directory tree: every entry's relative path, type and content (a symlink's target, not what
 * it points to), in byte order of the paths. A missing directory hashes like an empty one. Renaming, adding,
 * removing or changing any file changes the digest; modes and times do not.
 */
export function sha256Tree(dir: string): string {
  const h = createHash('sha256');
  const walk = (rel: string) => {
    let names: string[];
    try {
      names = readdirSync(join(dir, rel));
    } catch (err) {
      if (rel === '' && (err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    for (const name of names.sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const p = join(dir, r);
      const st = lstatSync(p);
      if (st.isSymbolicLink()) h.update(`l\0${r}\0${readlinkSync(p)}\0`);
      else if (st.isDirectory()) {
        h.update(`d\0${r}\0`);
        walk(r);
      } else if (st.isFile()) h.update(`f\0${r}\0${sha256FileSync(p)}\0`);
    }
  };
  walk('');
  return h.digest('hex');
}
