import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type Docker from 'dockerode';
import { ignoreMatcher } from '../sync/tree.js';

export interface Guards {
  /** Read-only bind mounts over workspace paths (same path inside). */
  binds: string[];
  /** Mounts that hide denied folders. */
  mounts: Docker.MountSettings[];
  /** Workspace paths made read-only, and hidden, for `sbx inspect`. */
  readOnly: string[];
  hidden: string[];
}

const inside = (root: string, path: string) => {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/**
 * Where git keeps hooks and config for this workspace: `.git/` itself, or for a worktree (`.git` is a
 * file) the repository's common folder; only what lies inside the workspace (the part mounted).
 */
function gitTargets(workspace: string, path: string): string[] {
  const dotGit = join(workspace, '.git');
  if (!existsSync(dotGit)) return [];
  const leaf = path.slice('.git/'.length);
  if (statSync(dotGit).isDirectory()) {
    // Also when hooks/ does not exist yet: created empty (git would create it too), then made read-only.
    if (leaf === 'hooks') mkdirSync(join(dotGit, 'hooks'), { recursive: true });
    return [join(dotGit, leaf)];
  }
  const gitdir = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'))?.[1]?.trim();
  if (!gitdir) return [];
  const dir = resolve(workspace, gitdir);
  const commonFile = join(dir, 'commondir');
  const common = existsSync(commonFile) ? resolve(dir, readFileSync(commonFile, 'utf8').trim()) : dir;
  return [join(common, leaf), join(dir, leaf)].filter((p, i, all) => all.indexOf(p) === i);
}

const SKIP = new Set(['.git', 'node_modules']);
const MAX_ENTRIES = 20_000;

/** Workspace files and folders matching denyRead patterns (gitignore-style, as the sync's excludes). */
export function denyReadMatches(workspace: string, patterns: string[]): string[] {
  if (patterns.length === 0) return [];
  const denied = ignoreMatcher(patterns);
  const found: string[] = [];
  let seen = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      if (++seen > MAX_ENTRIES) return;
      const full = join(dir, entry.name);
      const rel = relative(workspace, full).split(sep).join('/');
      if (denied(rel, entry.isDirectory())) {
        found.push(full);
        continue;
      }
      if (entry.isDirectory() && !SKIP.has(entry.name)) walk(full);
    }
  };
  walk(workspace);
  return found;
}

/**
 * The file guards of a new sandbox: denyWrite paths (git's hooks and config by default, and the
 * workspace's settings file) are bind-mounted read-only over themselves; denyRead matches are
 * hidden (files read as empty, folders as empty). Both are fixed when the sandbox is created.
 */
export function fileGuards(
  workspace: string,
  denyWrite: string[],
  denyRead: string[],
  settingsFile: string,
  mountedRoots: string[] = [],
): Guards {
  const readOnly = new Set<string>();
  for (const path of [...denyWrite, settingsFile]) {
    const clean = path.replace(/^\.?\//, '').replace(/\/$/, '');
    const targets = clean.startsWith('.git/') ? gitTargets(workspace, clean) : [join(workspace, clean)];
    for (const target of targets)
      if ([workspace, ...mountedRoots].some((root) => inside(root, target)) && existsSync(target))
        readOnly.add(target);
  }
  const hidden = denyReadMatches(workspace, denyRead);
  return {
    binds: [...readOnly].map((p) => `${p}:${p}:ro`),
    mounts: hidden.map((p) =>
      statSync(p).isDirectory()
        ? { Type: 'tmpfs', Source: '', Target: p, ReadOnly: true }
        : { Type: 'bind', Source: '/dev/null', Target: p, ReadOnly: true },
    ),
    readOnly: [...readOnly],
    hidden,
  };
}
