import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { SimpleGit } from 'simple-git';
import { SbxError, usageError } from '../shared/errors.js';

export interface Worktree {
  /** The worktree folder: the branch sandbox's workspace. */
  path: string;
  branch: string;
  /** The repository's top folder (the user's own checkout). */
  repository: string;
  /** The repository's git folder, which the sandbox needs for commits. */
  gitDir: string;
  /** What the branch was created from (a ref), when sbx created it. */
  from: string | undefined;
}

async function gitAt(dir: string): Promise<SimpleGit> {
  const { simpleGit } = await import('simple-git');
  return simpleGit({ baseDir: dir });
}

/** Where sbx puts the worktrees of a repository: beside it, `<repo>.worktrees/<branch>`. */
export const worktreePath = (repository: string, branch: string) =>
  join(dirname(repository), `${basename(repository)}.worktrees`, branch.replaceAll('/', '-'));

/** The repository a folder belongs to (its main checkout, also from inside a worktree). */
async function repositoryOf(workspace: string): Promise<{ repository: string; gitDir: string }> {
  const git = await gitAt(workspace);
  let common: string;
  try {
    common = (await git.revparse(['--path-format=absolute', '--git-common-dir'])).trim();
  } catch {
    throw usageError(
      `${workspace} is not in a git repository, so it has no branches to give sandboxes.`,
      'Run `git init` (and commit once) first, or run without --branch.',
    );
  }
  return { repository: dirname(common), gitDir: common };
}

/**
 * The worktree of a branch sandbox: reused when it exists, else created on branch NAME (made from
 * --from, default the current HEAD, when it does not exist yet). No name: a fresh `sbx/<agent>-<n>`.
 */
export async function ensureWorktree(
  workspace: string,
  requested: string,
  agent: string,
  from: string | undefined,
): Promise<Worktree> {
  const { repository, gitDir } = await repositoryOf(workspace);
  const git = await gitAt(repository);
  const branches = new Set((await git.branchLocal()).all);
  let branch = requested;
  if (!branch) {
    let n = 1;
    while (branches.has(`sbx/${agent}-${n}`) || existsSync(worktreePath(repository, `sbx/${agent}-${n}`)))
      n++;
    branch = `sbx/${agent}-${n}`;
  }
  try {
    await git.raw(['check-ref-format', '--branch', branch]);
  } catch {
    throw usageError(
      `"${branch}" is not a valid branch name.`,
      'Use letters, digits, / - _ . (see git check-ref-format).',
    );
  }
  const path = worktreePath(repository, branch);
  const existing = (await listWorktrees(git)).find((w) => w.branch === branch);
  if (existing) {
    if (resolve(existing.path) !== path)
      throw new SbxError('conflict', `The branch ${branch} is already checked out at ${existing.path}.`, {
        hint: `Use another branch name, or run sbx in ${existing.path} without --branch.`,
      });
    return { path, branch, repository, gitDir, from: undefined };
  }
  const base = from ?? 'HEAD';
  try {
    await git.raw(
      branches.has(branch)
        ? ['worktree', 'add', path, branch]
        : ['worktree', 'add', '-b', branch, path, base],
    );
  } catch (err) {
    throw new SbxError(
      'conflict',
      `git could not make a worktree for ${branch}: ${(err as Error).message.trim()}`,
      {
        hint: from
          ? `Check that ${from} exists (git rev-parse ${from}).`
          : 'Commit at least once before using --branch.',
      },
    );
  }
  return { path, branch, repository, gitDir, from: branches.has(branch) ? undefined : base };
}

async function listWorktrees(git: SimpleGit): Promise<Array<{ path: string; branch: string | undefined }>> {
  const out = await git.raw(['worktree', 'list', '--porcelain']);
  return out
    .split('\n\n')
    .filter(Boolean)
    .map((block) => ({
      path: /^worktree (.+)$/m.exec(block)?.[1] ?? '',
      branch: /^branch refs\/heads\/(.+)$/m.exec(block)?.[1],
    }));
}

/** Removes a branch sandbox's worktree, never its branch (check it first: checkWorktree). */
export async function removeWorktree(path: string): Promise<void> {
  if (existsSync(path)) await (await gitAt(path)).raw(['worktree', 'remove', '--force', path]);
}

/**
 * Refuses, listing what would be lost, when a worktree has uncommitted changes or its branch has
 * commits no other branch has; forced, it passes.
 */
export async function checkWorktree(path: string, branch: string, force: boolean): Promise<void> {
  if (force || !existsSync(path)) return;
  const git = await gitAt(path);
  const status = await git.raw(['status', '--porcelain']);
  if (status.trim()) {
    throw new SbxError('conflict', `The worktree ${path} has uncommitted changes:\n${status.trimEnd()}`, {
      hint: 'Commit or discard them, or add -f to remove the worktree anyway (the branch stays).',
    });
  }
  const others = (await git.branchLocal()).all.filter((b) => b !== branch).map((b) => `refs/heads/${b}`);
  const only = (
    await git.raw(['rev-list', '--oneline', branch, ...(others.length ? ['--not', ...others] : [])])
  ).trim();
  if (only) {
    throw new SbxError('conflict', `The branch ${branch} has commits no other branch has:\n${only}`, {
      hint: 'Merge them (git merge) first, or add -f to remove the worktree anyway (the branch and its commits stay).',
    });
  }
}
