import { findRepository, hostGit, hostGitNoRepo } from './host-git.js';

export interface GitIdentity {
  name?: string;
  email?: string;
}

/**
 * user.name and user.email as git resolves them for the workspace (repository config over global
 * over system: the last value git lists wins, as with `git config --get`). Outside a repository the
 * global config answers; no git at all yields nothing. Run with sbx's hardened host git: the
 * repository's config is read as data (its user.name and user.email only, no include followed),
 * since a sandbox may have written the workspace.
 */
export async function gitIdentity(workspace: string): Promise<GitIdentity> {
  const args = ['config', '--null', '--get-regexp', '^user\\.(name|email)$'];
  const repo = findRepository(workspace);
  const listed = await (repo ? hostGit(repo, args) : hostGitNoRepo(args)).catch(() => '');
  const found: Record<string, string> = {};
  for (const entry of listed.split('\0')) {
    const at = entry.indexOf('\n');
    if (at > 0) found[entry.slice(0, at)] = entry.slice(at + 1);
  }
  const name = found['user.name']?.trim();
  const email = found['user.email']?.trim();
  return { ...(name ? { name } : {}), ...(email ? { email } : {}) };
}
