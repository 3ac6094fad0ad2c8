import type { PlanStep } from '@nabla-build/model';
import type { Argv } from 'yargs';
import type { GlobalArgs } from '../context.js';
import type { CommandResult } from './result.js';
import { note, out, table } from '../output.js';

interface RemoteArgs extends GlobalArgs {
  ref: string;
  targets?: string[];
}

/**
 * `cache ls|push|pull <ref>`: the shared step cache seen from here (registered by cache.ts). `ls` lists the
 * entries of a registry repository or OCI layout; `push` fills it with every step of the given targets
 * (building what is missing locally); `pull` warms the local cache with every step of the targets it holds.
 */
export function remoteCacheCommands(y: Argv<object>, result: CommandResult): Argv<object> {
  const ref = (c: Argv<object>) =>
    c.positional('ref', {
      type: 'string',
      demandOption: true,
      describe: 'registry repository (127.0.0.1:5000/cache, ghcr.io/acme/nabla-cache) or oci:<dir>',
    });
  return y
    .command({
      command: 'ls <ref>',
      describe: 'list the step entries in a shared cache (registry repository or oci:<dir>)',
      builder: (c) => ref(c).option('json', { type: 'boolean', describe: 'print JSON' }),
      handler: async (args) => {
        result.exitCode = await list(args);
      },
    })
    .command({
      command: 'push <ref> <targets..>',
      describe: 'push every step of the targets to a shared cache (builds what the local cache lacks)',
      builder: (c) =>
        ref(c)
          .positional('targets', { type: 'string', array: true, demandOption: true, describe: 'targets, or world' })
          .option('json', { type: 'boolean', describe: 'print JSON' }),
      handler: async (args) => {
        result.exitCode = await push(args);
      },
    })
    .command({
      command: 'pull <ref> <targets..>',
      describe: 'fill the local cache with every step of the targets that the shared cache holds (builds nothing)',
      builder: (c) =>
        ref(c)
          .positional('targets', { type: 'string', array: true, demandOption: true, describe: 'targets, or world' })
          .option('json', { type: 'boolean', describe: 'print JSON' }),
      handler: async (args) => {
        result.exitCode = await pull(args);
      },
    });
}

async function list(args: RemoteArgs): Promise<number> {
  const [{ resolveSettings }, { openTransport, readArtifact, ArtifactProblem }, { dockerCredentials }] =
    await Promise.all([import('../context.js'), import('@nabla-build/remote-cache'), import('@nabla-build/registry')]);
  const settings = await resolveSettings(args);
  const t = openTransport(
    args.ref,
    {
      credentials: dockerCredentials({ env: process.env }),
      insecure: (r) => settings.insecureRegistries.includes(r),
      retry: { attempts: 3 },
    },
    'cache ls',
  );
  const entries: { key: string; step: string; bytes: number; chunks: number; format: string; createdBy?: string }[] =
    [];
  for (const tag of (await t.listTags()).filter((x) => /^[0-9a-f]{64}$/.test(x)).sort()) {
    try {
      const a = await readArtifact(t, tag);
      if (!a) continue;
      entries.push({
        key: tag,
        step: a.config.step,
        bytes: a.manifest.layers.reduce((x, l) => x + l.size, 0),
        chunks: a.manifest.layers.length,
        format: String(a.config.format),
        createdBy: a.config.createdBy,
      });
    } catch (err) {
      if (!(err instanceof ArtifactProblem)) throw err;
      entries.push({ key: tag, step: '?', bytes: 0, chunks: 0, format: `unusable: ${err.message}` });
    }
  }
  entries.sort((a, b) => (a.step < b.step ? -1 : a.step > b.step ? 1 : 0));
  if (args.json) {
    out(JSON.stringify({ ref: t.name, entries }, null, 2));
    return 0;
  }
  const rows = [['STEP', 'KEY', 'SIZE', 'CHUNKS', 'FORMAT']];
  for (const e of entries) rows.push([e.step, e.key.slice(0, 16), human(e.bytes), String(e.chunks), e.format]);
  out(table(rows));
  note(`${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} in ${t.name}`);
  return 0;
}

/** Every step a shared cache can hold, for targets (not only the final ones: `push` fills, `pull` warms). */
function shared(steps: PlanStep[], shares: (s: PlanStep) => boolean): PlanStep[] {
  return steps.filter((s) => s.cacheable && shares(s));
}

async function push(args: RemoteArgs): Promise<number> {
  const [{ loadProject }, { runSession }, { shareable }] = await Promise.all([
    import('../context.js'),
    import('../session.js'),
    import('@nabla-build/remote-cache'),
  ]);
  const project = await loadProject(args);
  const r = await runSession(project, args.targets ?? [], {
    remote: { from: [], to: [args.ref] },
    want: (plan) => shared(plan.steps, shareable).map((s) => s.id),
  });
  const report = r.remote;
  const pushed = report?.pushed ?? [];
  const failures = report?.pushFailures ?? [];
  const bytes = pushed.reduce((a, p) => a + p.bytesUploaded, 0);
  if (args.json) out(JSON.stringify(report, null, 2));
  else {
    for (const p of pushed) out(`${p.step}  ${p.target}  ${human(p.bytesUploaded)} uploaded`);
    note(
      `${pushed.length} entr${pushed.length === 1 ? 'y' : 'ies'} pushed to ${args.ref} (${human(bytes)} uploaded), ${shared(r.plan.steps, shareable).length - pushed.length - failures.length} already there`,
    );
  }
  return failures.length > 0 ? 1 : 0;
}

async function pull(args: RemoteArgs): Promise<number> {
  const [{ loadProject }, { makePlan }, engine, { acquireLock }, { emptyReport, openRemoteCache }] = await Promise.all([
    import('../context.js'),
    import('../planning.js'),
    import('@nabla-build/engine'),
    import('@nabla-build/fsio'),
    import('../remote-cache.js'),
  ]);
  const project = await loadProject(args);
  const { settings } = project;
  const plan = await makePlan(project, args.targets ?? []);
  const report = emptyReport([args.ref], []);
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const remote = await openRemoteCache(settings, { from: [args.ref], to: [] }, report, controller.signal);
  if (!remote) return 0;
  const store = new engine.StepStore(settings.cacheDir);
  const rows: { step: string; status: 'cached' | 'pulled' | 'missing' | 'failed'; bytes?: number; why?: string }[] = [];
  try {
    for (const step of shared(plan.steps, remote.shares)) {
      if (await store.read(step)) {
        rows.push({ step: step.id, status: 'cached' });
        continue;
      }
      const found = await remote.lookup(step, controller.signal);
      if (!found) {
        rows.push({ step: step.id, status: 'missing' });
        continue;
      }
      const lock = await acquireLock(`${settings.cacheDir}/locks/${step.key}.lock`, {
        signal: controller.signal,
      });
      try {
        if (await store.read(step)) rows.push({ step: step.id, status: 'cached' });
        else {
          await engine.pullEntry(store, step, found, controller.signal);
          rows.push({ step: step.id, status: 'pulled', bytes: found.bytes });
        }
      } catch (err) {
        if (controller.signal.aborted) throw err;
        const why = (err as Error).message;
        note(`warning: ${step.id} from ${found.source} is unusable (${why}): not pulled`);
        rows.push({ step: step.id, status: 'failed', why });
      } finally {
        await lock.release();
      }
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (args.json) out(JSON.stringify({ ref: args.ref, steps: rows, warnings: report.warnings }, null, 2));
  else {
    out(table([['STEP', 'STATUS', 'SIZE'], ...rows.map((r) => [r.step, r.status, r.bytes ? human(r.bytes) : ''])]));
    const n = rows.filter((r) => r.status === 'pulled').length;
    note(`${n} entr${n === 1 ? 'y' : 'ies'} pulled from ${args.ref} into ${settings.cacheDir}`);
  }
  return rows.some((r) => r.status === 'failed') ? 1 : 0;
}

interface PruneArgs extends RemoteArgs {
  unused?: boolean;
  keepLast?: number;
  olderThan?: string;
  dryRun?: boolean;
  json?: boolean;
}

/**
 * `cache prune <ref> --unused`: removes the shared cache's entries that no current plan of any target reaches.
 * Keys contain host facts (machine, compiler, build root), so each entry is judged with the host facts it was
 * pushed with: entries of other hosts are stale only when their own host's plans no longer reach them. Entries
 * that do not record their host are kept.
 */
export async function pruneRemote(args: PruneArgs): Promise<number> {
  const { UsageError } = await import('@nabla-build/model');
  if (!args.unused || args.keepLast !== undefined || args.olderThan !== undefined)
    throw new UsageError('usage', `cache prune ${args.ref} takes --unused (and --dry-run) only`, {
      where: args.ref,
      hint: `nabla-build cache prune ${args.ref} --unused --dry-run`,
    });
  const [{ loadProject }, { makePlan }, { openTransport, readArtifact, ArtifactProblem }, { dockerCredentials }] =
    await Promise.all([
      import('../context.js'),
      import('../planning.js'),
      import('@nabla-build/remote-cache'),
      import('@nabla-build/registry'),
    ]);
  const project = await loadProject(args);
  const { settings } = project;
  const t = openTransport(
    args.ref,
    {
      credentials: dockerCredentials({ env: process.env }),
      insecure: (r) => settings.insecureRegistries.includes(r),
      retry: { attempts: 3 },
    },
    'cache prune',
  );
  const all = [...project.recipes.targets.keys()];
  const reachable = new Map<string, Set<string>>();
  const keysFor = async (host: Record<string, unknown>) => {
    const id = JSON.stringify(host);
    let keys = reachable.get(id);
    if (!keys) {
      const plan = await makePlan(project, all, undefined, undefined, host as never);
      keys = new Set(plan.steps.map((s) => s.key));
      reachable.set(id, keys);
    }
    return keys;
  };
  const removed: { key: string; step: string; bytes: number }[] = [];
  const kept: { key: string; step: string; why: string }[] = [];
  for (const tag of (await t.listTags()).filter((x) => /^[0-9a-f]{64}$/.test(x)).sort()) {
    let a: Awaited<ReturnType<typeof readArtifact>>;
    try {
      a = await readArtifact(t, tag);
    } catch (err) {
      if (!(err instanceof ArtifactProblem)) throw err;
      kept.push({ key: tag, step: '?', why: `unreadable here: ${err.message}` });
      continue;
    }
    if (!a) continue;
    if (!a.config.host) {
      kept.push({ key: tag, step: a.config.step, why: 'no host recorded' });
      continue;
    }
    if ((await keysFor(a.config.host)).has(tag)) continue;
    removed.push({ key: tag, step: a.config.step, bytes: a.manifest.layers.reduce((x, l) => x + l.size, 0) });
  }
  if (!args.dryRun) for (const r of removed) await t.deleteTag(r.key);
  const bytes = removed.reduce((a, r) => a + r.bytes, 0);
  if (args.json) out(JSON.stringify({ ref: t.name, dryRun: args.dryRun ?? false, removed, kept, bytes }, null, 2));
  else {
    for (const r of removed) out(`${r.step}  ${r.key.slice(0, 16)}  ${human(r.bytes)}`);
    note(
      `${args.dryRun ? 'would remove' : 'removed'} ${removed.length} entr${removed.length === 1 ? 'y' : 'ies'} (${human(bytes)}) from ${t.name}${kept.length ? `; kept ${kept.length} it cannot judge` : ''}`,
    );
  }
  return 0;
}

function human(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
