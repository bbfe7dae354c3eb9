import type { Tree } from './tree.js';

export type Direction = 'push' | 'pull' | 'both';

/** A path changed on both sides since the last sync, differently. */
export interface Conflict {
  path: string;
  local: 'changed' | 'deleted' | 'added';
  remote: 'changed' | 'deleted' | 'added';
}

export interface SyncPlan {
  /** Host → sandbox: files and links to copy, folders to make, paths to remove. */
  push: { files: string[]; dirs: string[]; deletes: string[] };
  /** Sandbox → host. */
  pull: { files: string[]; dirs: string[]; deletes: string[] };
  conflicts: Conflict[];
  /**
   * Changed in the sandbox but never copied back (git hooks and config, sbx's settings): the host's
   * version is put back there instead (when the sync goes that way).
   */
  protected: string[];
  /** Paths already the same on both sides. */
  same: string[];
}

/**
 * The three-way decision per path, against what both sides held at the last sync (`base`): a side
 * that still has the base version takes the other side's (a deletion included); both changed the
 * same way is already in sync; both changed differently is a conflict, left alone unless `prefer`
 * says which side wins. `direction` limits the copying to one way; the other way waits.
 */
export function planSync(
  base: Record<string, { id: string }>,
  local: Tree,
  remote: Tree,
  options: {
    direction: Direction;
    prefer?: 'ours' | 'theirs' | undefined;
    protect?: (path: string) => boolean;
  },
): SyncPlan {
  const plan: SyncPlan = {
    push: { files: [], dirs: [], deletes: [] },
    pull: { files: [], dirs: [], deletes: [] },
    conflicts: [],
    protected: [],
    same: [],
  };
  const paths = new Set([...Object.keys(base), ...Object.keys(local), ...Object.keys(remote)]);
  for (const path of [...paths].sort()) {
    const b = base[path]?.id;
    const l = local[path]?.id;
    const r = remote[path]?.id;
    if (l === r) {
      if (l !== undefined) plan.same.push(path);
      continue;
    }
    let winner: 'local' | 'remote';
    if (l === b) winner = 'remote';
    else if (r === b) winner = 'local';
    else if (options.prefer) winner = options.prefer === 'ours' ? 'local' : 'remote';
    else {
      const change = (side: string | undefined) =>
        side === undefined ? 'deleted' : b === undefined ? 'added' : 'changed';
      plan.conflicts.push({ path, local: change(l), remote: change(r) });
      continue;
    }
    if (winner === 'remote') {
      if (options.protect?.(path)) {
        plan.protected.push(path);
        if (options.direction !== 'pull') add(plan.push, path, l);
        continue;
      }
      if (options.direction === 'push') continue;
      add(plan.pull, path, r);
    } else {
      if (options.direction === 'pull') continue;
      add(plan.push, path, l);
    }
  }
  return plan;
}

function add(target: SyncPlan['push'], path: string, id: string | undefined): void {
  if (id === undefined) target.deletes.push(path);
  else if (id === 'dir') target.dirs.push(path);
  else target.files.push(path);
}

/**
 * What never comes back from a sandbox: what its file guards keep read-only when mounted (git's
 * hooks and config, sbx's settings), the `.git` entry itself (a folder turned into a gitfile would
 * send the host's git to a repository of the sandbox's making), and submodules' hooks and config.
 * Case-insensitive, for case-insensitive file systems (`.GIT/config` is `.git/config` on macOS).
 */
export const PROTECTED = [
  /^\.git$/i,
  /^\.git\/hooks(\/|$)/i,
  /^\.git\/config$/i,
  /^\.git\/modules\/.+\/(config|hooks(\/.*)?)$/i,
  /^\.sbx(\/|$)/i,
];
export const isProtected = (path: string) => PROTECTED.some((re) => re.test(path));
