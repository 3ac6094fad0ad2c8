/**
 * Builders for the spt fixture tender (a C stand-in for Solo5's spt tender, see spt-fixture.c) and the
 * fixture guest it execs (a static C program that prints what it received). Both are compiled with the
 * host gcc into a directory of the caller's choosing.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { run } from '@nabla-build/exec';
import { shipped } from '../fixtures/upstreams.js';

/** A device the guest's manifest declares (the fixture tender reads `<kernel>.manifest`). */
export interface FixtureDevice {
  kind: 'block' | 'net';
  name: string;
}

/** frankenlibc's manifest: block `rootfs` and net `tap`. */
export const FRANKENLIBC_MANIFEST: readonly FixtureDevice[] = Object.freeze([
  { kind: 'block', name: 'rootfs' },
  { kind: 'net', name: 'tap' },
]);

/** Prefix of the line in which the fixture guest reports its argv and envp. */
export const GUEST_REPORT_PREFIX = 'NABLA-GUEST ';

/** What the fixture guest received. */
export interface GuestReport {
  argv: string[];
  envp: string[];
}

/** Finds and decodes the guest's report line in console output; `undefined` if there is none. */
export function parseGuestReport(lines: readonly string[]): GuestReport | undefined {
  const line = lines.find((l) => l.startsWith(GUEST_REPORT_PREFIX));
  return line === undefined ? undefined : (JSON.parse(line.slice(GUEST_REPORT_PREFIX.length)) as GuestReport);
}

/** The environment the guest got, as a map, without the fixture tender's own `NABLA_FIXTURE_*` entries. */
export function guestEnvOf(report: GuestReport): { env: string[]; fixture: Record<string, string> } {
  const env: string[] = [];
  const fixture: Record<string, string> = {};
  for (const e of report.envp) {
    if (e.startsWith('NABLA_FIXTURE_')) {
      const eq = e.indexOf('=');
      fixture[e.slice(0, eq)] = e.slice(eq + 1);
    } else {
      env.push(e);
    }
  }
  return { env, fixture };
}

/** A C source of this directory (found from dist/ too). */
const source = (name: string) => shipped('..', 'fixture-tender', name);

/** Compiles the fixture tender into `outDir`; returns its path. */
export async function buildFixtureTender(outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const out = join(resolve(outDir), 'spt-fixture');
  await run('gcc', ['-std=gnu11', '-O2', '-Wall', '-Wextra', '-Werror', '-o', out, source('spt-fixture.c')], {
    cwd: outDir,
  });
  return out;
}

export interface BuildFixtureGuestOptions {
  /** Output file name inside outDir. */
  name?: string;
  /** Embed a Solo5 ABI1 note (spt target) with this ABI version. */
  solo5Abi?: number;
  /** Write `<guest>.manifest` declaring these devices (the fixture tender then requires them). */
  manifest?: readonly FixtureDevice[];
}

/** Compiles the static fixture guest into `outDir`; returns its path. */
export async function buildFixtureGuest(outDir: string, opts: BuildFixtureGuestOptions = {}): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const out = join(resolve(outDir), opts.name ?? 'fixture-guest.nabla');
  const defs = opts.solo5Abi === undefined ? [] : [`-DSOLO5_ABI=${opts.solo5Abi}`];
  await run('gcc', ['-static', '-O2', '-Wall', '-Werror', ...defs, '-o', out, source('fixture-guest.c')], {
    cwd: outDir,
  });
  if (opts.manifest) {
    await writeFile(`${out}.manifest`, opts.manifest.map((d) => `${d.kind} ${d.name}\n`).join(''));
  }
  return out;
}
