import type { PolicyView } from '../network/policy.js';
import type { PortSummary, SandboxRef } from '../sandbox/discovery.js';
import { EXIT_CODES, SbxError } from '../shared/errors.js';
import { formatBytes } from '../shared/parse.js';

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

/** "now", "5m ago", "3h ago", "12d ago": how long since an ISO time. */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return 'now';
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
  ] as const)
    if (s >= size) return `${Math.floor(s / size)}${unit} ago`;
  return 'now';
}

/** Bytes as `sbx df` shows them: 1.5GB, 12MB, 300B; unknown (negative) as "?". */
export const bytes = (n: number) => (n < 0 ? '?' : formatBytes(n));

/**
 * The table `sbx ls` prints: what one list call knows, plus when each stopped sandbox was last used
 * (one inspection each: see lastUsedOfAll).
 */
export const lsTable = (sandboxes: SandboxRef[], lastUsed: Map<string, string> = new Map()) =>
  table([
    ['SANDBOX', 'AGENT', 'STATUS', 'WORKSPACE', 'BRANCH', 'TEMPLATE', 'CREATED', 'LAST USED'],
    ...sandboxes.map((s) => [
      s.name,
      s.agent,
      s.status,
      s.workspace,
      s.branch ?? '-',
      s.template,
      s.created.replace('T', ' ').slice(0, 16),
      s.state === 'stopped' ? (lastUsed.has(s.id) ? ago(lastUsed.get(s.id)!) : '?') : 'now',
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
