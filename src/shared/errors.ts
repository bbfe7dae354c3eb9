/**
 * The error vocabulary of sbx and its exit-code table. Everything a user can get wrong, or the
 * environment can refuse, becomes one of these: a one-paragraph message, a hint, a stable exit code.
 * docs/configuration.md's "Exit codes" section mirrors EXIT_CODES.
 */
export const EXIT_CODES = {
  /** An error sbx did not expect: a bug; run again with --debug and report it. */
  internal: 1,
  /** Invalid command line: unknown agent, bad flag value, malformed -e/-v. */
  usage: 2,
  /** A template (or image) build failed. */
  buildFailed: 65,
  /** Something named does not exist: workspace, host path, env file, template. */
  notFound: 66,
  /** The image is missing and could not be pulled. */
  imageUnavailable: 68,
  /** No container engine answered. */
  engineUnavailable: 69,
  /** The request conflicts with an existing sandbox (another agent, other mounts). */
  conflict: 75,
  /** A workspace file that configures the sandbox is new or changed since the user approved it (`sbx trust`). */
  untrusted: 77,
  /** The configuration file or a configured value is invalid. */
  config: 78,
} as const;

export type ErrorKind = keyof typeof EXIT_CODES;

export class SbxError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(
    readonly kind: ErrorKind,
    message: string,
    options: { cause?: unknown; hint?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SbxError';
    this.exitCode = EXIT_CODES[kind];
    this.hint = options.hint;
  }
}

export const usageError = (message: string, hint?: string) =>
  new SbxError('usage', message, hint === undefined ? {} : { hint });

export const notFoundError = (message: string, hint?: string) =>
  new SbxError('notFound', message, hint === undefined ? {} : { hint });

/** The nearest candidate by edit distance, when it is close enough to be a likely typo. */
export function nearest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = editDistance(input.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(input.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}
