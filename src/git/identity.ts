export interface GitIdentity {
  name?: string;
  email?: string;
}

/**
 * user.name and user.email as git resolves them for the workspace (repository config over global
 * over system: the last value git lists wins, as with `git config --get`). Outside a repository the
 * global config answers; no git at all yields nothing. One git process, and no git library: this
 * runs on every creation.
 */
export async function gitIdentity(workspace: string): Promise<GitIdentity> {
  const { execFile } = await import('node:child_process');
  const listed = await new Promise<string>((resolve) =>
    execFile(
      'git',
      ['config', '--null', '--get-regexp', '^user\\.(name|email)$'],
      { cwd: workspace },
      (err, stdout) => resolve(err ? '' : stdout),
    ),
  );
  const found: Record<string, string> = {};
  for (const entry of listed.split('\0')) {
    const at = entry.indexOf('\n');
    if (at > 0) found[entry.slice(0, at)] = entry.slice(at + 1);
  }
  const name = found['user.name']?.trim();
  const email = found['user.email']?.trim();
  return { ...(name ? { name } : {}), ...(email ? { email } : {}) };
}
