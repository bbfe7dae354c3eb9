/**
 * A command line split at `--`: sbx's own arguments, and those after it (for the agent or command).
 * A module of its own, without oclif, for the fast path (fast.ts), which must not load oclif.
 */
export function splitAtDashes(argv: readonly string[]): { own: string[]; rest: string[] } {
  const split = argv.indexOf('--');
  return split === -1
    ? { own: [...argv], rest: [] }
    : { own: argv.slice(0, split), rest: argv.slice(split + 1) };
}
