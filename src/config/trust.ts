/**
 * What the user approved of each workspace's own configuration files (`sbx trust`): a content hash
 * per workspace and file, kept outside every workspace, in sbx's config folder (trust.json), as
 * direnv's `allow` and mise's `trust` do. A file is used to configure a sandbox only in a version
 * whose hash is here.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SbxError } from '../shared/errors.js';
import { configDir } from './config.js';

export interface TrustRecord {
  /** Workspace-relative path (or, for a folder hashed whole, its path with a trailing /) → sha256. */
  files: Record<string, string>;
  /** When the user last approved (ISO time). */
  approved: string;
}

type Store = Record<string, TrustRecord>;

export const trustFile = () => join(configDir(), 'trust.json');

export const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** Every approval, by workspace (its real path). A damaged file is an error, never "nothing approved". */
export function readTrust(): Store {
  let text: string;
  try {
    text = readFileSync(trustFile(), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as { workspaces?: Store };
    const store = parsed.workspaces ?? {};
    for (const record of Object.values(store))
      if (typeof record?.files !== 'object' || record.files === null)
        throw new Error('a record has no files');
    return store;
  } catch (err) {
    throw new SbxError('config', `The approvals file ${trustFile()} is damaged: ${(err as Error).message}.`, {
      hint: `Remove it (every workspace's files then need \`sbx trust\` again) or fix it by hand.`,
    });
  }
}

function writeTrust(store: Store): void {
  const file = trustFile();
  mkdirSync(configDir(), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ workspaces: store }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** Records these files (path → hash) as approved for the workspace, in place of what it had. */
export function approveFiles(workspace: string, files: Record<string, string>): void {
  const store = readTrust();
  store[workspace] = { files: { ...store[workspace]?.files, ...files }, approved: new Date().toISOString() };
  writeTrust(store);
}

/** Forgets every approval of the workspace; false when it had none. */
export function revokeWorkspace(workspace: string): boolean {
  const store = readTrust();
  if (!store[workspace]) return false;
  delete store[workspace];
  writeTrust(store);
  return true;
}

/** The approved hash of one file of a workspace, if any. */
export const approvedHash = (workspace: string, path: string): string | undefined =>
  readTrust()[workspace]?.files[path];

/** One workspace file as a sandbox would use it now, with what it asks for. */
export interface TrustItem {
  /** Workspace-relative path (a folder hashed whole ends with /). */
  path: string;
  hash: string;
  /** What it would widen or run, one line each, for the user to judge. */
  shows: string[];
}

/** The items not approved as they are now: new (never approved) or changed. */
export function unapproved(
  workspace: string,
  items: TrustItem[],
): Array<TrustItem & { change: 'new' | 'changed' }> {
  const files = readTrust()[workspace]?.files ?? {};
  return items.flatMap((item) => {
    const had = files[item.path];
    if (had === item.hash) return [];
    return [{ ...item, change: had === undefined ? ('new' as const) : ('changed' as const) }];
  });
}

/** What the user is shown before approving: each file, new or changed, and what it asks for. */
export function describeUnapproved(items: Array<TrustItem & { change: 'new' | 'changed' }>): string {
  return items
    .map((i) =>
      [
        `  ${i.path} (${i.change === 'new' ? 'new' : 'changed since you approved it'})`,
        ...i.shows.map((s) => `    - ${s}`),
      ].join('\n'),
    )
    .join('\n');
}

/** The refusal when a file is new or changed and nobody could be asked (or the user said no). */
export function untrustedError(
  workspace: string,
  items: Array<TrustItem & { change: 'new' | 'changed' }>,
  refusedByUser = false,
): SbxError {
  return new SbxError(
    'untrusted',
    `${refusedByUser ? 'Not approved' : 'The workspace has configuration files you have not approved in this version'}; nothing was created:\n${describeUnapproved(items)}`,
    {
      hint: `Read them (an agent in a sandbox of this workspace could have written them), then approve with \`sbx trust ${workspace}\` and run again.`,
    },
  );
}
