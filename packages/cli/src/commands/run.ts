import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { UsageError } from '@nabla-build/model';
import type { CommandModule } from 'yargs';
import type { GlobalArgs } from '../context.js';
import type { CommandResult } from './result.js';
import { checkMem, rawValue } from '../settings/values.js';
import { note, out } from '../output.js';

interface RunArgs extends GlobalArgs {
  image: string;
  dryRun?: boolean;
  net?: boolean;
  mem?: number;
  tender?: string;
  elftool?: string;
  '--'?: string[];
}

/** Where runnc installs the tender. */
export const DEFAULT_TENDER = '/opt/runnc/bin/nabla-run';

export function runCommand(result: CommandResult): CommandModule<object, RunArgs> {
  return {
    command: 'run <image>',
    describe: 'boot a target or oci:<dir> image with the nabla-run tender as runnc would (args after --)',
    builder: (y) =>
      y
        .positional('image', {
          type: 'string',
          demandOption: true,
          describe: 'a target (built if needed) or oci:<dir>',
        })
        .option('dry-run', { type: 'boolean', describe: 'print the nabla-run command line instead of running it' })
        .option('net', {
          type: 'boolean',
          describe: 'attach a tap in a network namespace of its own (root; 169.254.x.y)',
        })
        .option('mem', { type: 'number', describe: 'guest memory in MiB (at least 512, as runnc)' })
        .option('tender', {
          type: 'string',
          describe: `spt tender (default: the target's own, else ${DEFAULT_TENDER})`,
        })
        .option('elftool', {
          type: 'string',
          describe:
            "solo5-elftool that reads the unikernel's manifest (default: the target's own, else solo5-elftool beside the tender)",
        })
        .parserConfiguration({ 'populate--': true }) as never,
    handler: async (args) => {
      const [{ loadProject }, { resolveImage }, { bootCommand, bootImage }] = await Promise.all([
        import('../context.js'),
        import('../image-source.js'),
        import('@nabla-build/steps'),
      ]);
      const mem = checkMem(args.mem, rawValue(process.argv, '--mem')); // before anything is built
      const project = await loadProject(args);
      const image = await resolveImage(project, args.image);
      const tender = args.tender ?? image.tender ?? DEFAULT_TENDER;
      if (!args.dryRun && !existsSync(tender))
        throw new UsageError('run.no-tender', `tender ${tender} does not exist`, {
          hint: 'nabla-build runtime install  (or --tender <path>)',
        });
      // The manifest decides which devices the unikernel gets. For an oci: layout the Solo5 that built it is not
      // known: `runtime install` puts solo5-elftool beside nabla-run, so the tender's directory is the best guess.
      const besideTender = join(dirname(tender), 'solo5-elftool');
      const elftool: string | undefined =
        args.elftool ?? image.elftool ?? (existsSync(besideTender) ? besideTender : undefined);
      if (args.elftool !== undefined && !existsSync(args.elftool))
        throw new UsageError('run.no-elftool', `--elftool ${args.elftool} does not exist`, {
          hint: 'nabla-build runtime install  (installs solo5-elftool beside nabla-run)',
        });
      if (!elftool)
        note(
          `no solo5-elftool found beside ${tender}: attaching runnc's fixed devices (rootfs, and a tap with --net) instead of the unikernel's manifest (pass --elftool <path>)`,
        );
      // Under <cache>/tmp, which `nabla-build clean` removes: a --dry-run keeps its files there for the command.
      await mkdir(join(project.settings.cacheDir, 'tmp'), { recursive: true, mode: 0o700 });
      const workDir = await mkdtemp(join(project.settings.cacheDir, 'tmp', 'run-'));
      let keep = false;
      const boot = {
        layoutDir: image.layoutDir,
        tender,
        ...(elftool ? { elftool } : {}),
        workDir,
        ...(args['--']?.length ? { args: args['--'].map(String) } : {}),
        ...(mem ? { memMb: mem } : {}),
        net: args.net ?? false,
        ...(process.env.PATH ? { path: process.env.PATH } : {}),
        onOutput: (line: string) => out(line),
      };
      try {
        if (args.dryRun) {
          // The command names the kernel and the rootfs image in workDir: they stay, so it works as printed.
          keep = true;
          const netns = `nb-dry${process.pid.toString(36)}`;
          const command = (await bootCommand(boot)).replaceAll('nb-<id>', netns);
          out(command);
          note(
            `the files this command uses are kept in ${workDir} (remove them with \`rm -r ${workDir}\` or \`nabla-build clean\`)`,
          );
          if (command.includes(netns))
            note(
              [
                `it runs in network namespace ${netns} with tap0 (169.254.1.1/24 on the host side); as root, create them first:`,
                `  ip netns add ${netns} && ip -n ${netns} link set lo up && ip -n ${netns} tuntap add dev tap0 mode tap && ip -n ${netns} addr add 169.254.1.1/24 dev tap0 && ip -n ${netns} link set tap0 up`,
                `and remove them afterwards: ip netns del ${netns}`,
              ].join('\n'),
            );
          return;
        }
        const r = await bootImage(boot);
        if (!r.ok) note(`the unikernel ${r.signal ? `was killed by ${r.signal}` : `exited with code ${r.exitCode}`}`);
        result.exitCode = r.ok ? 0 : (r.exitCode ?? 1);
      } finally {
        if (!keep) await rm(workDir, { recursive: true, force: true });
      }
    },
  };
}
