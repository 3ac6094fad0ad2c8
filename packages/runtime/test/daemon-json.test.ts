import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InputFileError } from '@nabla-build/model';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DOCKERD_RELOAD_HINT, locateJsonError, registerRuntime } from '../src/index.js';

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nb-daemon-json-'));
  file = join(dir, 'daemon.json');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const EXISTING = `{
  "log-driver": "json-file",
  "log-opts": { "max-size": "10m" },
  "runtimes": { "kata": { "path": "/usr/bin/kata-runtime", "runtimeArgs": ["--debug"] } },
  "insecure-registries": ["127.0.0.1:5000"]
}
`;

describe('registerRuntime', () => {
  it('merges runtimes.runnc, keeps every other key, writes a backup, and is idempotent', async () => {
    writeFileSync(file, EXISTING);
    chmodSync(file, 0o600);
    const now = new Date('2026-01-29T10:11:12.345Z');
    const first = await registerRuntime({ daemonJson: file, now });
    expect(first.status).toBe('updated');
    expect(first.backup).toBe(`${file}.bak-20260129T101112Z`);
    expect(readFileSync(first.backup as string, 'utf8')).toBe(EXISTING);
    expect(first.changes).toEqual(['runtimes.runnc.path: (absent) -> /opt/runnc/bin/runnc']);
    expect(first.reloadHint).toBe(DOCKERD_RELOAD_HINT);
    expect(first.reloadHint).toContain('kill -HUP $(pidof dockerd)');

    const written = JSON.parse(readFileSync(file, 'utf8'));
    expect(written).toEqual({
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '10m' },
      runtimes: {
        kata: { path: '/usr/bin/kata-runtime', runtimeArgs: ['--debug'] },
        runnc: { path: '/opt/runnc/bin/runnc' },
      },
      'insecure-registries': ['127.0.0.1:5000'],
    });
    expect(Object.keys(written)).toEqual(['log-driver', 'log-opts', 'runtimes', 'insecure-registries']);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const before = readFileSync(file);
    const second = await registerRuntime({ daemonJson: file, now: new Date('2026-01-30T00:00:00Z') });
    expect(second.status).toBe('unchanged');
    expect(second.backup).toBeUndefined();
    expect(second.reloadHint).toBeUndefined();
    expect(readFileSync(file)).toEqual(before);
    expect(readdirSync(dir).sort()).toEqual(['daemon.json', 'daemon.json.bak-20260129T101112Z']);
  });

  it('updates a different path, keeping the entry’s other fields', async () => {
    writeFileSync(
      file,
      JSON.stringify({ runtimes: { runnc: { path: '/usr/local/bin/runnc', runtimeArgs: ['--x'] } } }),
    );
    const r = await registerRuntime({ daemonJson: file, now: new Date('2026-01-29T00:00:00Z') });
    expect(r.status).toBe('updated');
    expect(r.previous).toEqual({ path: '/usr/local/bin/runnc', runtimeArgs: ['--x'] });
    expect(r.changes).toEqual(['runtimes.runnc.path: /usr/local/bin/runnc -> /opt/runnc/bin/runnc']);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({
      runtimes: { runnc: { path: '/opt/runnc/bin/runnc', runtimeArgs: ['--x'] } },
    });
  });

  it('creates the file (and its directory) when there is none, without a backup', async () => {
    const nested = join(dir, 'etc/docker/daemon.json');
    const r = await registerRuntime({ daemonJson: nested, name: 'runnc-dev', path: '/opt/dev/runnc' });
    expect(r.status).toBe('created');
    expect(r.backup).toBeUndefined();
    expect(JSON.parse(readFileSync(nested, 'utf8'))).toEqual({ runtimes: { 'runnc-dev': { path: '/opt/dev/runnc' } } });
  });

  it('two backups in the same second do not overwrite each other', async () => {
    writeFileSync(file, '{}');
    const now = new Date('2026-01-29T00:00:00Z');
    const a = await registerRuntime({ daemonJson: file, now, path: '/a/runnc' });
    const b = await registerRuntime({ daemonJson: file, now, path: '/b/runnc' });
    expect(a.backup).not.toBe(b.backup);
    expect(readFileSync(b.backup as string, 'utf8')).toContain('/a/runnc');
  });

  it('reports malformed JSON with file and line, and changes nothing', async () => {
    const bad = '{\n  "log-driver": "json-file",\n  "runtimes": {\n    "kata": { "path": "/x" },\n  }\n}\n';
    writeFileSync(file, bad);
    const err = await registerRuntime({ daemonJson: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputFileError);
    expect((err as InputFileError).line).toBe(5);
    expect((err as InputFileError).where).toBe(`${file}:5`);
    expect((err as InputFileError).message).toMatch(/malformed JSON at column 3: expected a "quoted" key, found `}`/);
    expect(readFileSync(file, 'utf8')).toBe(bad);
    expect(readdirSync(dir)).toEqual(['daemon.json']);
  });

  it('refuses a runtimes field that is not an object, naming the field and its line', async () => {
    writeFileSync(file, '{\n  "debug": true,\n  "runtimes": ["runnc"]\n}\n');
    const err = await registerRuntime({ daemonJson: file }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InputFileError);
    expect((err as InputFileError).field).toBe('runtimes');
    expect((err as InputFileError).line).toBe(3);
  });

  it('refuses a relative runtime path', async () => {
    await expect(registerRuntime({ daemonJson: file, path: 'runnc' })).rejects.toThrow(/not absolute/);
  });
});

describe('locateJsonError', () => {
  it.each([
    ['{"a": 1}', undefined],
    ['{"a": [1, 2.5e3, -0, true, null, "x\\u00e9"]}', undefined],
    ['{"a": 1,}', { line: 1, column: 9 }],
    ['{\n"a" 1}', { line: 2, column: 5 }],
    ['{"a": 01}', { line: 1, column: 8 }],
    ['{"a": "x', { line: 1, column: 9 }],
    ['{} x', { line: 1, column: 4 }],
    ["{'a': 1}", { line: 1, column: 2 }],
  ])('%j', (text, where) => {
    const loc = locateJsonError(text);
    if (where === undefined) expect(loc).toBeUndefined();
    else expect(loc).toMatchObject(where);
  });
});
