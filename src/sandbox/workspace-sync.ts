import { lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readConfig } from '../config/config.js';
import { currentEndpoint, isLocalEndpoint } from '../engine/connection.js';
import { runHelper } from '../engine/containers.js';
import { isBindRefused } from '../engine/errors.js';
import { workspaceSettings } from '../network/settings.js';
import { extraLabels, type SandboxRecord } from '../shared/labels.js';
import type { Direction } from '../sync/plan.js';
import { type SyncReport, type SyncResult, syncWorkspace } from '../sync/sync.js';

/**
 * Whether the engine sees the host's workspace at its path: always for a local socket (Docker,
 * rootless Docker, Podman, Docker Desktop's shared folders); for tcp:// and ssh:// engines a probe
 * container mounts the path read-only and lists its top level, which must match this host's (names,
 * sizes, mtimes): a remote machine with a folder of the same name is not the same folder.
 */
export async function engineSeesWorkspace(workspace: string, image: string): Promise<boolean> {
  if (isLocalEndpoint(currentEndpoint())) return true;
  let output: string;
  try {
    const probe = await runHelper({
      Image: image,
      User: '0:0',
      Entrypoint: ['find'],
      Cmd: ['/sbx-probe', '-mindepth', '0', '-maxdepth', '1', '-printf', '%P\\t%y\\t%s\\t%T@\\n'],
      Labels: extraLabels(),
      HostConfig: {
        NetworkMode: 'none',
        Mounts: [{ Type: 'bind', Source: workspace, Target: '/sbx-probe', ReadOnly: true }],
      },
    });
    if (probe.code !== 0) return false;
    output = probe.output;
  } catch (err) {
    // The engine refuses a bind of a path its machine does not have: it cannot see the workspace.
    if (isBindRefused(err)) return false;
    throw err;
  }
  const there = new Set(output.split('\n').filter(Boolean).map(fingerprintLine));
  const here = [
    ['', lstatSync(workspace)] as const,
    ...readdirSync(workspace).map((n) => [n, lstatSync(join(workspace, n))] as const),
  ];
  return here.every(([name, st]) =>
    there.has(
      fingerprintLine(
        `${name}\t${st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f'}\t${st.size}\t${st.mtimeMs / 1000}`,
      ),
    ),
  );
}

/** One probe line, reduced to what both machines agree on: name, kind, size of files, mtime to the second. */
function fingerprintLine(line: string): string {
  const [name, kind, size, mtime] = line.split('\t');
  return `${name}|${kind}|${kind === 'f' ? size : ''}|${Math.floor(Number(mtime))}`;
}

/** Paths a sync never copies: config sync.exclude, and the settings' denyRead (secrets stay on the host). */
export async function syncExcludes(workspace: string): Promise<string[]> {
  const settings = workspaceSettings(workspace);
  return [
    ...((await readConfig()).sync?.exclude ?? []),
    ...settings.flatMap((s) => s.filesystem?.denyRead ?? []),
  ];
}

/** Syncs a sandbox's workspace copy with the host's; `report` hears what changed (and the progress). */
export async function syncSandbox(
  sandbox: SandboxRecord,
  direction: Direction,
  prefer?: 'ours' | 'theirs',
  report?: SyncReport,
): Promise<SyncResult> {
  return syncWorkspace(sandbox, {
    direction,
    prefer,
    exclude: await syncExcludes(sandbox.workspace),
    report,
  });
}
