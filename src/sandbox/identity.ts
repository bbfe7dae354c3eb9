import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Worktree } from '../git/worktree.js';
import { notFoundError } from '../shared/errors.js';

/** The workspace: the given folder or the current one, as its real path. */
export function resolveWorkspace(arg: string | undefined, cwd = process.cwd()): string {
  const path = resolve(cwd, arg ?? '.');
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    throw notFoundError(
      `The workspace ${path} does not exist.`,
      'Give an existing folder, or run sbx inside your project folder.',
    );
  }
  if (!statSync(real).isDirectory()) {
    throw notFoundError(
      `The workspace ${real} is not a folder.`,
      'Give the project folder, not a file in it.',
    );
  }
  return real;
}

/** The default sandbox's name: readable, and unique per workspace path. */
export function sandboxName(workspace: string): string {
  const slug =
    basename(workspace)
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 40) || 'root';
  const hash = createHash('sha256').update(workspace).digest('hex').slice(0, 8);
  return `sbx-${slug}-${hash}`;
}

/** Said on every run of a sandbox that has the Docker socket. */
export const DOCKER_SOCKET_WARNING =
  'this sandbox has the Docker socket: whatever runs in it (the agent included) can take root on the host through it.';

/** The workspace of a new or existing sandbox: the folder, or for --branch its worktree (made if needed). */
export async function sandboxWorkspace(
  folder: string,
  flags: { branch?: string | undefined; from?: string | undefined },
  agent: string,
): Promise<{ workspace: string; worktree?: Worktree }> {
  if (flags.branch === undefined) return { workspace: folder };
  const { ensureWorktree } = await import('../git/worktree.js');
  const worktree = await ensureWorktree(folder, flags.branch, agent, flags.from);
  return { workspace: worktree.path, worktree };
}
