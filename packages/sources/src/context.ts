import { BuildError, type MirrorRule } from '@nabla-build/model';

/** Everything the source operations need from the caller (engine, CLI, tests). */
export interface SourceContext {
  /** Root of the shared cache: git mirrors under `<cacheDir>/git`, downloads under `<cacheDir>/downloads`. */
  cacheDir: string;
  /** User mirror rules (config file, `NABLA_BUILD_MIRRORS`, `--mirror`). The built-in defaults are always added. */
  mirrors?: MirrorRule[];
  /** Allow mirror replacements that are local paths or `file://` URLs (config `allowLocal`). */
  allowLocal?: boolean;
  /** Cache only: any operation that would fetch anything throws `source.offline` at once, without trying. */
  offline?: boolean;
  /** The target being built; only used in the `nabla-build fetch <target>` hint of `source.offline`. */
  target?: string;
  signal?: AbortSignal;
  /** Every git command and its output is appended here. */
  logFile?: string;
  /** Human-readable progress lines (`fetching musl (shallow) from …`). */
  onProgress?: (line: string) => void;
  /** HTTP idle timeout per download attempt, in ms (no byte received for this long → next URL). Default 60 000. */
  httpTimeoutMs?: number;
}

export function fetchHint(ctx: SourceContext): string {
  return `nabla-build fetch ${ctx.target ?? '<target>'}`;
}

/** The error every network-touching operation throws at once under `--offline`. */
export function offlineError(
  ctx: SourceContext,
  source: string,
  url: string,
  what = 'is not in the cache',
): BuildError {
  return new BuildError('source.offline', `source ${source} ${what}, and --offline forbids fetching it from ${url}`, {
    where: url,
    hint: `run \`${fetchHint(ctx)}\` while online (or drop --offline)`,
  });
}

export const FULL_SHA = /^[0-9a-f]{40}$/;
export const SHA256_HEX = /^[0-9a-f]{64}$/;
