import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CancelledError, UsageError } from '@nabla-build/model';
import { buildFixtureGuest, buildFixtureTender, FRANKENLIBC_MANIFEST } from '@nabla-build/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTapNetwork,
  destroyTapNetwork,
  makeRootfsImage,
  probeOnce,
  runSmoke,
  type SmokeOptions,
} from '../src/index.js';

let dir: string;
let opts: Omit<SmokeOptions, 'spec'>;
let netGuest: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nb-smoke-'));
  mkdirSync(join(dir, 'rootfs'));
  const [tender, guest, ng] = await Promise.all([
    buildFixtureTender(join(dir, 'bin')),
    buildFixtureGuest(join(dir, 'bin'), { manifest: [{ kind: 'block', name: 'rootfs' }] }),
    buildFixtureGuest(join(dir, 'bin'), { name: 'net.nabla', manifest: FRANKENLIBC_MANIFEST }),
  ]);
  netGuest = ng;
  const rootfsImg = (await makeRootfsImage(join(dir, 'rootfs'), join(dir, 'rootfs.img'))).path;
  opts = { tender, kernel: guest, rootfsImg, env: ['RUMP_VERBOSE=1'] };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('runSmoke, console checks', () => {
  it('passes as soon as the expected text appears, and stops the unikernel', async () => {
    const started = Date.now();
    const r = await runSmoke({
      ...opts,
      spec: { args: ['sleep', '30'], expect: 'hello from the fixture', timeoutSeconds: 20 },
    });
    expect(r).toMatchObject({ passed: true, reason: 'saw console output containing "hello from the fixture"' });
    expect(r.tail).toContain('hello from the fixture guest');
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('fails when the unikernel exits without the expected text, with the output tail', async () => {
    const r = await runSmoke({
      ...opts,
      spec: { args: ['exit', '4'], expect: 'Ready to accept connections', timeoutSeconds: 20 },
    });
    expect(r.passed).toBe(false);
    expect(r.exitCode).toBe(4);
    expect(r.reason).toBe(
      'the unikernel exited with code 4 without console output containing "Ready to accept connections"',
    );
    expect(r.tail).toContain('hello from the fixture guest');
  });

  it('fails on timeout', async () => {
    const r = await runSmoke({ ...opts, spec: { args: ['sleep', '30'], expect: 'never printed', timeoutSeconds: 1 } });
    expect(r.passed).toBe(false);
    expect(r.reason).toBe('timed out after 1 s without console output containing "never printed"');
    expect(r.durationMs).toBeLessThan(10_000);
  });

  it('without expect or probe, passes on exit code 0 only', async () => {
    expect((await runSmoke({ ...opts, spec: { args: [], timeoutSeconds: 20 } })).passed).toBe(true);
    const failed = await runSmoke({ ...opts, spec: { args: ['exit', '2'], timeoutSeconds: 20 } });
    expect(failed).toMatchObject({ passed: false, reason: 'the unikernel exited with code 2', exitCode: 2 });
  });

  it('throws CancelledError when the caller cancels, and refuses a probe without a network', async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    await expect(
      runSmoke({ ...opts, signal: ac.signal, spec: { args: ['sleep', '30'], expect: 'never', timeoutSeconds: 20 } }),
    ).rejects.toBeInstanceOf(CancelledError);
    await expect(
      runSmoke({ ...opts, spec: { args: [], probe: { kind: 'redis-ping', port: 6379 }, timeoutSeconds: 5 } }),
    ).rejects.toBeInstanceOf(UsageError);
  });
});

describe('probeOnce without a namespace', () => {
  it('reports a closed port as a failed probe, not an error', async () => {
    const r = await probeOnce({ kind: 'http-get', host: '127.0.0.1', port: 1, timeoutMs: 1000 });
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/connection failed: ECONNREFUSED/);
  });
});

const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot && process.env.CI !== 'true')('runSmoke with a TCP probe over the tap (root)', () => {
  it.each(['redis-ping', 'http-get'] as const)('%s passes against a guest that serves', async (kind) => {
    const net = await createTapNetwork({ id: `sm${kind[0]}${process.pid % 10000}` });
    try {
      // The fixture guest is a Linux process in the namespace, not an LKL stack: give it the guest address.
      execFileSync('ip', ['-n', net.netns, 'addr', 'add', `${net.guestIp}/32`, 'dev', 'lo']);
      const r = await runSmoke({
        ...opts,
        kernel: netGuest,
        net: { netns: net.netns, tap: net.tap, ip: net.guestIp, masklen: net.masklen, gateway: net.hostIp },
        spec: { args: ['serve', '6379'], probe: { kind, port: 6379 }, timeoutSeconds: 20 },
        probeIntervalMs: 200,
      });
      expect(r.reason).toBe(`saw a ${kind} answer on ${net.guestIp}:6379`);
      expect(r.passed).toBe(true);
      expect(r.probe?.detail).toMatch(kind === 'redis-ping' ? /^answered: \+PONG/ : /^answered: HTTP\/1\.0 200 OK/);
    } finally {
      await destroyTapNetwork(net.netns);
    }
  });
});
