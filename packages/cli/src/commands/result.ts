/** The exit code of the command that ran: 0 unless its handler sets another (main reads it after parsing). */
export interface CommandResult {
  exitCode: number;
}
