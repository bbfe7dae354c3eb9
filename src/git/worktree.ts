import { existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { SbxError, usageError } from '../shared/errors.js';
import { findRepository, type HostRepository, hostGit, worktreeGitDir } from './host-git.js';

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

/** Where sbx puts the worktrees of a repository: beside it, `<repo>.worktrees/<branch>`. */
export const worktreePath = (repository: string, branch: string) =>
  join(dirname(repository), `${basename(repository)}.worktrees`, branch.replaceAll('/', '-'));

/** The repository a folder belongs to (its main checkout, also from inside a worktree), as sbx finds it. */
function repositoryOf(workspace: string): HostRepository {
  const repo = findRepository(workspace);
  if (!repo)
    throw usageError(
      `${workspace} is not in a git repository, so it has no branches to give sandboxes.`,
      'Run `git init` (and commit once) first, or run without --branch.',
    );
  return repo;
}

/** The repository of a worktree sbx made at PATH: from the path itself (see worktreePath), not its files. */
export function repositoryOfWorktree(path: string): HostRepository | undefined {
  const parent = dirname(resolve(path));
  if (!parent.endsWith('.worktrees')) return undefined;
  const top = join(dirname(parent), basename(parent).slice(0, -'.worktrees'.length));
  const common = join(top, '.git');
  try {
    if (lstatSync(common).isDirectory()) return { top, common };
  } catch {}
  return undefined;
}

const localBranches = async (repo: HostRepository) =>
  (await hostGit(repo, ['for-each-ref', '--format=%(refname:short)', 'refs/heads/']))
    .split('\n')
    .filter(Boolean);

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
  const repo = repositoryOf(workspace);
  const { top: repository, common: gitDir } = repo;
  const branches = new Set(await localBranches(repo));
  let branch = requested;
  if (!branch) {
    let n = 1;
    while (branches.has(`sbx/${agent}-${n}`) || existsSync(worktreePath(repository, `sbx/${agent}-${n}`)))
      n++;
    branch = `sbx/${agent}-${n}`;
  }
  try {
    await hostGit(repo, ['check-ref-format', '--branch', branch]);
  } catch {
    throw usageError(
      `"${branch}" is not a valid branch name.`,
      'Use letters, digits, / - _ . (see git check-ref-format).',
    );
  }
  const path = worktreePath(repository, branch);
  const existing = (await listWorktrees(repo)).find((w) => w.branch === branch);
  if (existing) {
    if (resolve(existing.path) !== path)
      throw new SbxError('conflict', `The branch ${branch} is already checked out at ${existing.path}.`, {
        hint: `Use another branch name, or run sbx in ${existing.path} without --branch.`,
      });
    return { path, branch, repository, gitDir, from: undefined };
  }
  const base = from ?? 'HEAD';
  try {
    mkdirSync(join(gitDir, 'worktrees'), { recursive: true });
    await hostGit(
      repo,
      branches.has(branch)
        ? ['worktree', 'add', '--', path, branch]
        : ['worktree', 'add', '-b', branch, '--', path, base],
    );
    pointBack(repo, path);
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

/**
 * Writes the worktree's `.git` file as `gitdir: <repo>/.git/worktrees/<id>`: git wrote the path it was
 * given (the shadow folder's, gone after the command), and a sandbox may have changed it.
 */
function pointBack(repo: HostRepository, path: string): boolean {
  const dir = worktreeGitDir(repo, path);
  if (!dir) return false;
  const dotGit = join(path, '.git');
  const want = `gitdir: ${dir}\n`;
  let current: string | undefined;
  try {
    if (lstatSync(dotGit).isFile()) current = readFileSync(dotGit, 'utf8');
  } catch {}
  if (current !== want) writeFileSync(dotGit, want);
  return true;
}

async function listWorktrees(
  repo: HostRepository,
): Promise<Array<{ path: string; branch: string | undefined }>> {
  const out = await hostGit(repo, ['worktree', 'list', '--porcelain']);
  // The first is the main worktree, whose path git gives as the shadow folder's (see hostGit).
  return out
    .split('\n\n')
    .filter(Boolean)
    .map((block, i) => ({
      path: i === 0 ? repo.top : (/^worktree (.+)$/m.exec(block)?.[1] ?? ''),
      branch: /^branch refs\/heads\/(.+)$/m.exec(block)?.[1],
    }));
}

/** The repository of the worktree at PATH, or an error saying it is not one sbx knows. */
function knownWorktree(path: string): HostRepository {
  const repo = repositoryOfWorktree(path);
  if (!repo)
    throw new SbxError(
      'conflict',
      `${path} is not a worktree of a repository beside it, as sbx makes them.`,
      {
        hint: 'Remove the folder yourself (and run `git worktree prune` in its repository).',
      },
    );
  return repo;
}

/**
 * Removes a branch sandbox's worktree, never its branch (check it first: checkWorktree). Its `.git`
 * file is written back by sbx first: what the sandbox left there is not followed.
 */
export async function removeWorktree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const repo = knownWorktree(path);
  if (!pointBack(repo, path))
    throw new SbxError('conflict', `${path} is not registered in ${repo.common}/worktrees.`, {
      hint: `Remove the folder yourself, then run \`git worktree prune\` in ${repo.top}.`,
    });
  await hostGit(repo, ['worktree', 'remove', '--force', '--force', '--', path]);
}

/**
 * Refuses, listing what would be lost, when a worktree has uncommitted changes or its branch has
 * commits no other branch has; forced, it passes.
 */
export async function checkWorktree(path: string, branch: string, force: boolean): Promise<void> {
  if (force || !existsSync(path)) return;
  const repo = knownWorktree(path);
  const gitDir = worktreeGitDir(repo, path);
  if (!gitDir)
    throw new SbxError('conflict', `${path} is not registered in ${repo.common}/worktrees.`, {
      hint: 'Check it with git yourself, or add -f to remove the folder anyway (the branch stays).',
    });
  const status = await hostGit(repo, ['status', '--porcelain', '--ignore-submodules=all', '--no-renames'], {
    gitDir,
    workTree: resolve(path),
  });
  if (status.trim()) {
    throw new SbxError('conflict', `The worktree ${path} has uncommitted changes:\n${status.trimEnd()}`, {
      hint: 'Commit or discard them, or add -f to remove the worktree anyway (the branch stays).',
    });
  }
  const others = (await localBranches(repo)).filter((b) => b !== branch).map((b) => `refs/heads/${b}`);
  const only = (
    await hostGit(repo, [
      'rev-list',
      '--oneline',
      '--no-show-signature',
      `refs/heads/${branch}`,
      ...(others.length ? ['--not', ...others] : []),
      '--',
    ])
  ).trim();
  if (only) {
    throw new SbxError('conflict', `The branch ${branch} has commits no other branch has:\n${only}`, {
      hint: 'Merge them (git merge) first, or add -f to remove the worktree anyway (the branch and its commits stay).',
    });
  }
}
