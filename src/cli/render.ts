import type { PortSummary, SandboxRef } from '../sandbox/discovery.js';

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
