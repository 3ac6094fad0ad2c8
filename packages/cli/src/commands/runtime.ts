import { chmod, copyFile, mkdir, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { onPath } from '@nabla-build/exec';
import { tempSibling } from '@nabla-build/fsio';
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import { note, out } from '../output.js';

interface RegisterArgs extends GlobalArgs {
  daemonJson: string;
  name: string;
  path: string;
}

interface InstallArgs extends GlobalArgs {
  prefix: string;
  runnc: boolean;
}

export function runtimeCommand(): CommandModule<object, GlobalArgs> {
  return {
    command: 'runtime <command>',
    describe: 'install the nabla-run tender and runnc, and register runnc with Docker',
    builder: (y) =>
      y
        .command<RegisterArgs>({
          command: 'register',
          describe: 'merge a runnc entry into daemon.json (backup first; idempotent)',
          builder: (r) =>
            r
              .option('daemon-json', {
                type: 'string',
                default: '/etc/docker/daemon.json',
                describe: 'the engine config to edit',
              })
              .option('name', {
                type: 'string',
                default: 'runnc',
                describe: 'runtime name (docker run --runtime=<name>)',
              })
              .option('path', {
                type: 'string',
                default: '/opt/runnc/bin/runnc',
                describe: 'path of the runnc binary',
              }) as never,
          handler: async (a) => {
            const { registerRuntime } = await import('@nabla-build/runtime');
            const r = await registerRuntime({ daemonJson: a.daemonJson, name: a.name, path: a.path });
            out(`${r.status} ${r.file}`);
            if (r.backup) note(`backup: ${r.backup}`);
            if (r.reloadHint) note(`reload the engine: ${r.reloadHint}`);
          },
        })
        .command<InstallArgs>({
          command: 'install',
          describe: 'build the nabla-run tender (and runnc, when go is installed) and install them into the prefix',
          builder: (r) =>
            r
              .option('prefix', { type: 'string', default: '/opt/runnc/bin', describe: 'install directory' })
              .option('runnc', {
                type: 'boolean',
                default: true,
                describe: 'also build and install runnc (needs go; --no-runnc: nabla-run only)',
              }) as never,
          handler: async (a) => {
            const [{ loadProject }, { runSession }, { writeTenderAbi }] = await Promise.all([
              import('../context.js'),
              import('../session.js'),
              import('@nabla-build/runtime'),
            ]);
            const project = await loadProject(a, { plans: true });
            const { steps } = await runSession(project, ['nabla-run']);
            const pkg = steps.get('package:nabla-run');
            const chain = project.recipes.toolchains.get(project.recipes.targets.get('nabla-run')?.toolchain ?? '');
            if (!pkg || !chain) throw new Error('nabla-run was not built');
            await mkdir(a.prefix, { recursive: true });
            const dest = await install(join(pkg.dir, 'out', 'nabla-run'), a.prefix);
            await writeTenderAbi(dest, Number(chain.facts['solo5.spt-abi'] ?? 0));
            // The same Solo5's elftool beside it: `run oci:<dir>` reads unikernel manifests with it.
            await install(join(pkg.dir, 'out', 'solo5-elftool'), a.prefix, 0o755);
            out(dest);
            // runnc is a Go program: without go the tender alone is still worth installing. Built in a session
            // of its own, after nabla-run is in place, so a failed runnc build leaves a working tender behind.
            if (a.runnc && !onPath('go', process.env.PATH ?? '')) {
              note(
                'runnc: not built, `go` is not on PATH (install it with `apt-get install golang-go`, then run `nabla-build runtime install` again; --no-runnc skips runnc)',
              );
            } else if (a.runnc) {
              const built = await runSession(project, ['runnc']);
              const runnc = built.steps.get('package:runnc');
              if (!runnc) throw new Error('runnc was not built');
              out(await install(join(runnc.dir, 'out', 'runnc'), a.prefix, 0o755));
            }
          },
        })
        .demandCommand(1, 'name a runtime command: register or install') as never,
    handler: () => {},
  };
}

/** Copies `file` into `dir` under its own name (replacing, never half-written); returns where it went. */
async function install(file: string, dir: string, mode?: number): Promise<string> {
  const dest = join(dir, basename(file));
  const staged = tempSibling(dest);
  await copyFile(file, staged);
  if (mode !== undefined) await chmod(staged, mode);
  await rename(staged, dest);
  return dest;
}
