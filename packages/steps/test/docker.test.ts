import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

describe('dockerReachable', () => {
  it('an engine that accepts the connection and never answers: false after 3 s, and the process can exit', async () => {
    // A real socket on loopback that takes the ping's connection and stays silent.
    const held: Socket[] = [];
    const server = createServer((c) => held.push(c));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    // In a process of its own, as the CLI runs it (the built package): whether it exits is the point.
    const module = fileURLToPath(new URL('../dist/docker.js', import.meta.url));
    try {
      const started = Date.now();
      const child = spawn(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const { dockerReachable } = await import(${JSON.stringify(module)}); console.log(await dockerReachable());`,
        ],
        { env: { ...process.env, DOCKER_HOST: `tcp://127.0.0.1:${port}` } },
      );
      let stdout = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
      });
      const code = await new Promise<number | null>((resolve) => {
        const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.on('exit', (c) => {
          clearTimeout(kill);
          resolve(c);
        });
      });
      expect(stdout.trim()).toBe('false');
      expect(code).toBe(0);
      expect(Date.now() - started).toBeLessThan(15_000); // the ping was aborted, not left open
      expect(held.length).toBe(1);
    } finally {
      for (const c of held) c.destroy();
      server.close();
    }
  }, 30_000);
});
