// Small helpers for the benchmark harness: timing, medians, commands, the machine's description.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs fn `reps` times (after `warmup` unmeasured runs); returns the median wall time in ms. */
export async function timeMedian(fn, { reps = 5, warmup = 1, before } = {}) {
  for (let i = 0; i < warmup; i++) {
    await before?.();
    await fn();
  }
  const times = [];
  for (let i = 0; i < reps; i++) {
    await before?.();
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return { median: median(times), runs: times };
}

/**
 * Runs a command and waits for it without blocking the event loop (the fixture HTTP server lives in this
 * process); throws with its output when it fails.
 */
export function run(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      code === 0
        ? resolve(out)
        : reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}):\n${out}\n${err.slice(-3000)}`)),
    );
  });
}

/** Runs a command synchronously (only for commands that need nothing from this process). */
export function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 28, ...opts });
  if (r.status !== 0)
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export function machine() {
  const v = (c, a) => {
    try {
      return execFileSync(c, a, { encoding: 'utf8' }).split('\n')[0].trim();
    } catch {
      return 'n/a';
    }
  };
  return {
    cpu: `${cpus()[0]?.model ?? 'unknown'} × ${cpus().length}`,
    memory: `${Math.round(totalmem() / 2 ** 30)} GiB`,
    kernel: v('uname', ['-sr']),
    node: process.version,
    gcc: v('gcc', ['--version']),
    git: v('git', ['--version']),
    docker: v('dockerd', ['--version']),
  };
}

export const fmtMs = (ms) => (ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`);
export const fmtBytes = (b) =>
  b < 1024 ? `${b} B` : b < 2 ** 20 ? `${(b / 1024).toFixed(1)} KiB` : `${(b / 2 ** 20).toFixed(2)} MiB`;
export const ratio = (a, b) => (b === 0 ? 'n/a' : `${(a / b).toFixed(2)}×`);

/** Bytes in a directory tree: apparent (sum of file sizes), on disk (`du`, hard links counted once), and files. */
export function treeBytes(dir) {
  let apparent = 0;
  let files = 0;
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        apparent += statSync(p).size;
        files++;
      }
    }
  };
  walk(dir);
  const disk = Number(sh('du', ['-sk', dir]).split('\t')[0]) * 1024;
  return { apparent, disk, files };
}
