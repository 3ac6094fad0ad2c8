import { setTimeout as delay } from 'node:timers/promises';
import { CancelledError } from '@nabla-build/model';

/** Bounded exponential backoff with jitter; `Retry-After` from the registry wins (up to `maxRetryAfterMs`). */
export interface RetryPolicy {
  /** Total tries of one operation, first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * Longest `Retry-After` honoured (60 s by default): a registry that asks for a longer wait gets no retry, the
   * operation fails with an error saying how long it asked for, so a CI job does not sit silent for an hour.
   */
  maxRetryAfterMs: number;
}

/**
 * Per-request time limits: a request without a body gets `baseMs`; an upload gets `baseMs` plus its size at
 * `minBytesPerSecond`, so a large blob on a slow link is not cut off while a stalled connection is noticed in
 * seconds, not after ten minutes.
 */
export const REQUEST_TIMEOUT = { baseMs: 30_000, minBytesPerSecond: 64 * 1024 };

export function requestTimeoutFor(bodyBytes: number, fixedMs?: number): number {
  if (fixedMs !== undefined) return fixedMs;
  return REQUEST_TIMEOUT.baseMs + Math.ceil((bodyBytes / REQUEST_TIMEOUT.minBytesPerSecond) * 1000);
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

/** Delay before retry number `retry` (1 = first retry): base·2^(retry-1), capped, then jittered to 50–100 %. */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (retry - 1));
  return Math.round(exp * (0.5 + random() * 0.5));
}

/** `Retry-After` as milliseconds (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  const v = value?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Waits `ms`, or throws CancelledError as soon as `signal` aborts. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  await delay(ms, undefined, signal ? { signal } : {}).catch(() => {
    throw new CancelledError('cancelled while waiting to retry');
  });
}
