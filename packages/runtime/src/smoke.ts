/**
 * The smoke boot behind `nabla-build test`: run the unikernel with the recipe's smoke args and check its
 * console for a substring and/or probe its TCP service over the tap, within a time limit. The unikernel is
 * stopped as soon as every check passed (servers never exit on their own).
 */
import type { SmokeSpec } from '@nabla-build/model';
import { CancelledError, UsageError } from '@nabla-build/model';
import { type LaunchOptions, type LaunchResult, launchUnikernel } from './launcher.js';
import { type ProbeResult, probeOnce } from './probe.js';

export interface SmokeOptions extends Omit<LaunchOptions, 'args' | 'signal'> {
  spec: SmokeSpec;
  signal?: AbortSignal;
  /** Pause between probe attempts. Default 500 ms. */
  probeIntervalMs?: number;
}

export interface SmokeResult {
  passed: boolean;
  /** Why it passed or failed, in one sentence. */
  reason: string;
  /** The last console lines. */
  tail: string[];
  durationMs: number;
  exitCode?: number;
  signal?: string;
  /** The last probe attempt, when there is a probe. */
  probe?: ProbeResult;
}

/** Keeps this much console text for matching `expect` (a match may span lines). */
const MATCH_WINDOW = 64 * 1024;

/** Runs the smoke check; a failed check is a result (`passed: false`), cancellation throws CancelledError. */
export async function runSmoke(o: SmokeOptions): Promise<SmokeResult> {
  const { spec } = o;
  if (spec.probe && !o.net) {
    throw new UsageError('smoke.needs-net', `the ${spec.probe.kind} probe needs a network for the unikernel`, {
      hint: 'run the smoke test with a tap network (as root), or use a console `expect` only',
    });
  }

  const stopper = new AbortController();
  let userCancelled = false;
  const onUserAbort = () => {
    userCancelled = true;
    stopper.abort();
  };
  if (o.signal?.aborted) throw new CancelledError('smoke test cancelled before it started');
  o.signal?.addEventListener('abort', onUserAbort, { once: true });

  let text = '';
  let matched = spec.expect === undefined;
  let probed = spec.probe === undefined;
  let lastProbe: ProbeResult | undefined;
  let timedOut = false;
  // Called only when a check passes (so never without one): the unikernel is stopped once all have.
  const checkDone = () => {
    if (matched && probed) stopper.abort();
  };
  const onOutput = (line: string) => {
    o.onOutput?.(line);
    if (matched) return;
    text = `${text}${line}\n`.slice(-MATCH_WINDOW);
    if (spec.expect !== undefined && text.includes(spec.expect)) {
      matched = true;
      checkDone();
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    stopper.abort();
  }, spec.timeoutSeconds * 1000);

  const probeLoop = async () => {
    const probe = spec.probe;
    const net = o.net;
    if (!probe || !net) return;
    const interval = o.probeIntervalMs ?? 500;
    while (!stopper.signal.aborted) {
      await new Promise((r) => setTimeout(r, interval));
      if (stopper.signal.aborted) return;
      try {
        lastProbe = await probeOnce({
          kind: probe.kind,
          host: net.ip,
          port: probe.port,
          timeoutMs: Math.min(2000, interval * 4),
          signal: stopper.signal,
          ...(net.netns ? { netns: net.netns } : {}),
        });
      } catch (err) {
        if (err instanceof CancelledError) return;
        throw err;
      }
      if (lastProbe.ok) {
        probed = true;
        checkDone();
        return;
      }
    }
  };

  const started = Date.now();
  let launched: LaunchResult | undefined;
  let tail: string[] = [];
  const tailCollector = (line: string) => {
    tail.push(line);
    if (tail.length > (o.tailLines ?? 50)) tail.shift();
    onOutput(line);
  };
  const probing = probeLoop();
  try {
    launched = await launchUnikernel({ ...o, args: spec.args, signal: stopper.signal, onOutput: tailCollector });
    tail = launched.tail;
  } catch (err) {
    if (!(err instanceof CancelledError)) throw err;
    if (userCancelled) throw err;
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onUserAbort);
    if (!stopper.signal.aborted) stopper.abort();
    await probing.catch(() => undefined);
  }

  const base = {
    tail,
    durationMs: Date.now() - started,
    ...(launched?.exitCode !== undefined ? { exitCode: launched.exitCode } : {}),
    ...(launched?.signal !== undefined ? { signal: launched.signal } : {}),
    ...(lastProbe ? { probe: lastProbe } : {}),
  };
  const wanted = [
    ...(spec.expect !== undefined ? [`console output containing ${JSON.stringify(spec.expect)}`] : []),
    ...(spec.probe ? [`a ${spec.probe.kind} answer on ${o.net?.ip}:${spec.probe.port}`] : []),
  ].join(' and ');
  if (spec.expect === undefined && !spec.probe) {
    if (launched?.ok) return { passed: true, reason: 'the unikernel exited with code 0', ...base };
    if (timedOut)
      return { passed: false, reason: `the unikernel did not exit within ${spec.timeoutSeconds} s`, ...base };
    return { passed: false, reason: `the unikernel ${ended(launched)}`, ...base };
  }
  if (matched && probed) return { passed: true, reason: `saw ${wanted}`, ...base };
  const missing = [
    ...(!matched ? [`console output containing ${JSON.stringify(spec.expect)}`] : []),
    ...(!probed && spec.probe ? [`a ${spec.probe.kind} answer (${lastProbe?.detail ?? 'no attempt finished'})`] : []),
  ].join(' and ');
  if (timedOut)
    return { passed: false, reason: `timed out after ${spec.timeoutSeconds} s without ${missing}`, ...base };
  return { passed: false, reason: `the unikernel ${ended(launched)} without ${missing}`, ...base };
}

function ended(r: LaunchResult | undefined): string {
  if (!r) return 'stopped';
  if (r.signal) return `was killed by ${r.signal}`;
  return `exited with code ${r.exitCode ?? 'unknown'}`;
}
