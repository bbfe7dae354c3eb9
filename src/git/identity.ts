export interface GitIdentity {
  name?: string;
  email?: string;
}

/**
 * user.name and user.email as git resolves them for the workspace (repository config over global
 * over system). Outside a repository the global config answers; no git at all yields nothing.
 */
export async function gitIdentity(workspace: string): Promise<GitIdentity> {
  const { simpleGit } = await import('simple-git');
  const git = simpleGit({ baseDir: workspace });
  const read = async (key: string) => {
    try {
      return (await git.getConfig(key)).value?.trim() || undefined;
    } catch {
      return undefined;
    }
  };
  const [name, email] = await Promise.all([read('user.name'), read('user.email')]);
  return { ...(name ? { name } : {}), ...(email ? { email } : {}) };
}
