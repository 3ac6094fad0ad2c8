/**
 * TCP service probes for smoke tests: `redis-ping` (RESP `PING` → `+PONG`) and `http-get` (`GET /` → an
 * `HTTP/1.x` status line). The guest is only reachable inside its network namespace, so the probe is a small
 * script run by this same Node binary, under `ip netns exec <ns>` when there is a namespace.
 */
import { CommandError, run } from '@nabla-build/exec';
import { CancelledError, UsageError } from '@nabla-build/model';
import { assertRoot } from './netns.js';

export type ProbeKind = 'redis-ping' | 'http-get';

/** CommonJS for `node -e`; arguments: kind host port timeoutMs. Prints one line; exit 0 means the service answered. */
export const PROBE_SCRIPT = `
const net = require('node:net');
const [kind, host, port, ms] = process.argv.slice(-4);
const req = kind === 'redis-ping' ? '*1\\r\\n$4\\r\\nPING\\r\\n' : 'GET / HTTP/1.0\\r\\nHost: ' + host + '\\r\\n\\r\\n';
const ok = (s) => (kind === 'redis-ping' ? s.startsWith('+PONG') : /^HTTP\\/1\\.[01] \\d{3}/.test(s));
let buf = '';
const sock = net.connect({ host, port: Number(port) });
const done = (code, msg) => { process.stdout.write(msg + '\\n'); sock.destroy(); process.exit(code); };
sock.setTimeout(Number(ms), () => done(1, 'no answer within ' + ms + ' ms'));
sock.on('connect', () => sock.write(req));
sock.on('data', (d) => {
  buf += d.toString('latin1');
  if (ok(buf)) done(0, 'answered: ' + buf.split('\\r\\n')[0]);
  else if (buf.includes('\\n')) done(1, 'unexpected answer: ' + JSON.stringify(buf.slice(0, 80)));
});
sock.on('end', () => done(ok(buf) ? 0 : 1, 'connection closed after ' + JSON.stringify(buf.slice(0, 80))));
sock.on('error', (e) => done(1, 'connection failed: ' + (e.code || e.message)));
`;

export interface ProbeOptions {
  kind: ProbeKind;
  host: string;
  port: number;
  /** Run inside this network namespace (needs root). */
  netns?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ProbeResult {
  ok: boolean;
  detail: string;
}

/** One probe attempt. Never throws for a service that does not answer; throws CancelledError when aborted. */
export async function probeOnce(o: ProbeOptions): Promise<ProbeResult> {
  if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) {
    throw new UsageError('probe.invalid', `probe port ${o.port} is not 1-65535`);
  }
  if (o.netns) assertRoot(`probing inside network namespace ${o.netns}`);
  const node = [process.execPath, '-e', PROBE_SCRIPT, o.kind, o.host, String(o.port), String(o.timeoutMs ?? 2000)];
  const [command, ...args] = (o.netns ? ['ip', 'netns', 'exec', o.netns, ...node] : node) as [string, ...string[]];
  try {
    const { stdout } = await run(command, args, { cwd: '/', signal: o.signal });
    return { ok: true, detail: stdout.trim() };
  } catch (err) {
    if (err instanceof CancelledError) throw err;
    if (err instanceof CommandError) return { ok: false, detail: err.tail.join(' ').trim() || err.message };
    throw err;
  }
}
