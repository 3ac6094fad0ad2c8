import { BuildError } from '@nabla-build/model';

export interface CommandFailure {
  command: string;
  args: string[];
  cwd: string;
  exitCode?: number;
  signal?: string;
  durationMs: number;
  /** The last lines of combined output. */
  tail: string[];
  logPath?: string;
  hint?: string;
}

/** A child process failed: carries command, cwd, exit code or signal, duration, output tail and log path. */
export class CommandError extends BuildError {
  readonly command: string;
  readonly args: string[];
  readonly cwd: string;
  /** The child's exit code when it exited; undefined when a signal killed it (see `signal`). */
  readonly exitStatus?: number;
  readonly signal?: string;
  readonly durationMs: number;
  readonly tail: string[];

  constructor(f: CommandFailure) {
    const how = f.signal ? `killed by ${f.signal}` : `exited with code ${f.exitCode}`;
    super('command.failed', `\`${[f.command, ...f.args].join(' ')}\` ${how}`, {
      where: f.cwd,
      ...(f.hint ? { hint: f.hint } : {}),
      ...(f.logPath ? { logPath: f.logPath } : {}),
    });
    this.command = f.command;
    this.args = f.args;
    this.cwd = f.cwd;
    if (f.exitCode !== undefined) this.exitStatus = f.exitCode;
    if (f.signal !== undefined) this.signal = f.signal;
    this.durationMs = f.durationMs;
    this.tail = f.tail;
  }
}
