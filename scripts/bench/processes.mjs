// Processes a command starts, from its `strace -f -e trace=execve,clone,clone3,fork,vfork` log: every process,
// and those of the native build — what a recipe command starts once it runs (build.sh, make, gcc...): the
// children a command process forks after its last exec. Ours are the rest: the CLI's direct children (git,
// patch, cp, the canonical-root wrapper with its mount and mkdir runs before it execs the command) and what
// git starts (upload-pack, index-pack, the connectivity check).

/** strace's options for countProcesses. */
export const STRACE_ARGS = ['-f', '-qq', '-e', 'trace=execve,clone,clone3,fork,vfork', '-e', 'signal=none'];

export function countProcesses(log) {
  const parent = new Map();
  const execs = new Map();
  const cloneAt = new Map();
  const pending = new Map();
  let root;
  for (const l of log.split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(l);
    if (!m) continue;
    const pid = Number(m[1]);
    let rest = m[2];
    root ??= pid;
    if (rest.includes('<unfinished ...>')) {
      pending.set(pid, rest.replace('<unfinished ...>', ''));
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    if (resumed) {
      rest = (pending.get(pid) ?? '') + resumed[1];
      pending.delete(pid);
    }
    const c = /^(?:clone3?|fork|vfork)\((.*)= (\d+)$/.exec(rest);
    if (c) {
      if (!c[1].includes('CLONE_THREAD')) {
        parent.set(Number(c[2]), pid);
        cloneAt.set(Number(c[2]), execs.get(pid)?.length ?? 0);
      }
      continue;
    }
    const e = /^execve\("([^"]+)", \[(.*?)\]/.exec(rest);
    if (e && / = 0$/.test(rest)) {
      const argv = [...e[2].matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((x) => x[1]);
      execs.set(pid, [...(execs.get(pid) ?? []), argv]);
    }
  }
  const children = new Map();
  for (const [c, p] of parent) children.set(p, [...(children.get(p) ?? []), c]);
  const program = (pid) => {
    const argv = execs.get(pid)?.at(-1);
    if (!argv) return '(fork)';
    const name = argv[0].split('/').pop();
    if (name !== 'git') return name;
    const sub = argv
      .slice(1)
      .find((a, i, all) => !a.startsWith('-') && !['-c', '-C', '--shallow-file'].includes(all[i - 1]));
    return `git ${sub ?? ''}`.trim();
  };
  const native = new Set();
  const mark = (pid) => {
    native.add(pid);
    for (const k of children.get(pid) ?? []) mark(k);
  };
  for (const d of children.get(root) ?? []) {
    const n = execs.get(d)?.length ?? 0;
    if (n === 0 || program(d).startsWith('git')) continue;
    for (const k of children.get(d) ?? []) if (cloneAt.get(k) === n) mark(k);
  }
  const byProgram = new Map();
  for (const pid of parent.keys()) {
    if (native.has(pid)) continue;
    const p = program(pid).startsWith('git') ? 'git' : program(pid);
    byProgram.set(p, (byProgram.get(p) ?? 0) + 1);
  }
  const gits = new Map();
  for (const pid of parent.keys()) {
    if (!native.has(pid) && program(pid).startsWith('git ')) gits.set(program(pid), (gits.get(program(pid)) ?? 0) + 1);
  }
  return { total: parent.size, native: native.size, ours: parent.size - native.size, byProgram, gits };
}
