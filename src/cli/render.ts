import type { PolicyView } from '../network/policy.js';
import type { PortSummary, SandboxRef } from '../sandbox/discovery.js';
import { EXIT_CODES, SbxError } from '../shared/errors.js';

/** Rows as aligned columns, the first row being the header (like docker ps). */
export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** "3000/tcp -> 127.0.0.1:49153", as docker port shows it; a free port not yet bound shows as :0. */
export const formatPort = (p: PortSummary) =>
  `${p.containerPort}/${p.protocol} -> ${p.hostIp}:${p.boundPort ?? p.hostPort}`;

/** The table `sbx ls` prints: what one list call knows, so it needs no inspection per sandbox. */
export const lsTable = (sandboxes: SandboxRef[]) =>
  table([
    ['SANDBOX', 'AGENT', 'STATUS', 'WORKSPACE', 'BRANCH', 'TEMPLATE', 'CREATED'],
    ...sandboxes.map((s) => [
      s.name,
      s.agent,
      s.status,
      s.workspace,
      s.branch ?? '-',
      s.template,
      s.created.replace('T', ' ').slice(0, 16),
    ]),
  ]);

/** An error as sbx shows it everywhere: "Error: message" and, when there is one, "Hint: ...". */
export const errorText = (err: SbxError, prefix = '', word = 'Error') =>
  `${word}: ${prefix}${err.message}${err.hint ? `\nHint: ${err.hint}` : ''}`;

/**
 * Any error as the user sees it, and its exit code: sbx's own with its hint, anything else as an
 * unexpected failure (a bug) with the way to learn more.
 */
export function describeError(err: unknown, debug: boolean): { text: string; exitCode: number } {
  if (err instanceof SbxError) return { text: errorText(err), exitCode: err.exitCode };
  return {
    text: `Error: unexpected failure: ${(err as Error)?.message ?? String(err)}${debug ? '' : '\nHint: run again with --debug for details, and report it if it persists.'}`,
    exitCode: EXIT_CODES.internal,
  };
}

/** A sandbox's egress policy on one line. */
export const formatPolicy = (p: PolicyView) =>
  `${p.mode} policy; allow: ${p.allow.join(' ') || '-'}; deny: ${p.deny.join(' ') || '-'}`;
