import { BuildError } from '@nabla-build/model';

export interface RegistryErrorInfo {
  /** Registry as the user named it (`127.0.0.1:5000`, `docker.io`). */
  registry: string;
  repository?: string;
  /** What was being done, e.g. `uploading blob sha256:ab12…`, `putting manifest for tag 1.0`. */
  operation: string;
  /** HTTP status; absent for connection failures. */
  status?: number;
  /** Error codes from the registry's JSON body (`UNAUTHORIZED`, `BLOB_UNKNOWN`…). */
  codes?: string[];
  /** The registry's own messages or the connection error, already free of credentials. */
  detail?: string;
  /** Retrying the same request may succeed (429, 5xx, connection reset). */
  temporary?: boolean;
  /** The registry's `Retry-After`, in milliseconds. */
  retryAfterMs?: number;
  hint?: string;
  cause?: unknown;
}

const TEMPORARY_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);
const TEMPORARY_CODES = new Set(['TOOMANYREQUESTS', 'UNAVAILABLE']);

function codeFor(status: number | undefined): string {
  if (status === undefined) return 'registry.network';
  if (status === 401) return 'registry.unauthorized';
  if (status === 403) return 'registry.denied';
  if (status === 404) return 'registry.not-found';
  if (status === 429) return 'registry.rate-limited';
  if (status >= 500) return 'registry.unavailable';
  return 'registry.failed';
}

/**
 * A registry request failed. The message names the registry, the repository and the operation, and never
 * contains credentials or tokens (they are redacted before an error is built). `temporary` says whether the
 * client's retries applied; a 401 carries `hint: docker login <registry>`.
 */
export class RegistryError extends BuildError {
  readonly registry: string;
  readonly repository?: string;
  readonly operation: string;
  readonly status?: number;
  readonly codes: string[];
  /** Retrying may help; callers set it once they have repaired what a refusal was about (client.ts). */
  temporary: boolean;
  readonly retryAfterMs?: number;

  constructor(info: RegistryErrorInfo) {
    const what = info.status === undefined ? 'connection failed' : `HTTP ${info.status}`;
    const codes = info.codes ?? [];
    const detail = [codes.join(', '), info.detail].filter((s) => s && s.length > 0).join(': ');
    const target = info.repository ? `${info.registry}/${info.repository}` : info.registry;
    const hint =
      info.hint ??
      (info.status === 401
        ? `docker login ${info.registry}`
        : info.status === 403
          ? `check that your account may push to ${target}`
          : undefined);
    super(codeFor(info.status), `${info.operation} on ${target}: ${what}${detail ? ` (${detail})` : ''}`, {
      where: target,
      ...(hint ? { hint } : {}),
      ...(info.cause !== undefined ? { cause: info.cause } : {}),
    });
    this.registry = info.registry;
    if (info.repository !== undefined) this.repository = info.repository;
    this.operation = info.operation;
    if (info.status !== undefined) this.status = info.status;
    this.codes = codes;
    this.temporary =
      info.temporary ??
      (info.status === undefined || TEMPORARY_STATUS.has(info.status) || codes.some((c) => TEMPORARY_CODES.has(c)));
    if (info.retryAfterMs !== undefined) this.retryAfterMs = info.retryAfterMs;
  }
}

/** Replaces every secret occurring in `text` with `***` (secrets shorter than 4 characters are left alone). */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('***');
  return out;
}
