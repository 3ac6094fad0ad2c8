/** Every command registers itself on the parser and leaves its exit code here. */
export interface CommandResult {
  exitCode: number;
}
