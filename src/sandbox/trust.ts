/**
 * The workspace's own configuration files, used only as the user approved them (see config/trust.ts):
 * which files a new sandbox would be configured from, checked before anything is built or made, and
 * approved by `sbx trust` or a yes on the terminal.
 */
import { realpathSync } from 'node:fs';
import { relative } from 'node:path';
import type { SbxConfig } from '../config/config.js';
import {
  approveFiles,
  describeUnapproved,
  readTrust,
  sha256,
  type TrustItem,
  unapproved,
  untrustedError,
} from '../config/trust.js';
import { workspaceSettingsFile } from '../network/settings.js';
import { isInside } from '../shared/workspace-file.js';
import { type Devcontainer, devcontainerShows } from '../templates/devcontainer.js';
import { devcontainerFor } from './devcontainer.js';

/**
 * Every workspace file a sandbox made now would be configured from, hashed as read: the workspace
 * settings, and the dev container's devcontainer.json, Dockerfile, compose files, .dockerignore and
 * local features (files outside the workspace, named by the user with --devcontainer, are theirs).
 */
export function trustItems(workspace: string, dc: Devcontainer | undefined): TrustItem[] {
  const root = realpathSync(workspace);
  const rel = (path: string) => (isInside(root, path) ? relative(root, path) || '.' : undefined);
  const items: TrustItem[] = [];
  const settings = workspaceSettingsFile(workspace);
  if (settings) items.push(settings.item);
  if (dc) {
    const own = rel(dc.file.path);
    if (own) items.push({ path: own, hash: sha256(dc.file.text), shows: devcontainerShows(dc) });
    for (const input of dc.inputs) {
      const path = rel(input.path.replace(/\/$/, ''));
      if (path)
        items.push({
          path: input.path.endsWith('/') ? `${path}/` : path,
          hash: input.hash,
          shows: [input.role],
        });
    }
  }
  return items;
}

/**
 * Checks that every file a new sandbox would use is approved as it is now. A new or changed one is
 * shown and, when `ask` can ask the user (a terminal), approved on their yes; otherwise refused with
 * the command to run. Nothing is made before this passes.
 */
export async function ensureApproved(
  workspace: string,
  dc: Devcontainer | undefined,
  ask: ((shown: string) => Promise<boolean>) | undefined,
): Promise<void> {
  const root = realpathSync(workspace);
  const pending = unapproved(root, trustItems(workspace, dc));
  if (pending.length === 0) return;
  if (!ask) throw untrustedError(root, pending);
  if (!(await ask(describeUnapproved(pending)))) throw untrustedError(root, pending, true);
  approveFiles(root, Object.fromEntries(pending.map((i) => [i.path, i.hash])));
}

export interface TrustResult {
  workspace: string;
  /** The files approved now (new or changed), with what they ask for. */
  approved: Array<TrustItem & { change: 'new' | 'changed' }>;
  /** Every file now approved for the workspace. */
  files: string[];
}

/** `sbx trust`: approves the workspace's configuration files as they are now. */
export function trustWorkspace(
  workspace: string,
  config: SbxConfig,
  devcontainer: string | undefined,
): TrustResult {
  const root = realpathSync(workspace);
  const dc = devcontainerFor({ workspace: root, template: undefined, devcontainer }, config);
  const pending = unapproved(root, trustItems(root, dc));
  if (pending.length > 0) approveFiles(root, Object.fromEntries(pending.map((i) => [i.path, i.hash])));
  return { workspace: root, approved: pending, files: Object.keys(readTrust()[root]?.files ?? {}) };
}
