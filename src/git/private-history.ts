import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { findRepository, type HostRepository, hostGit, worktreeGitDir } from './host-git.js';

/**
 * Private history (issue 27 point 0): in a sandbox of a git workspace the host's git folder is never
 * writable. It is mounted read-only at HOST_GIT; the sandbox's own git folder (a volume) takes the
 * place git looks for it (over `<repo>/.git` for a plain sandbox; over the worktree's git folder
 * `<repo>/.git/worktrees/<id>` for --branch, whose `.git` file is bound read-only over itself), and
 * borrows the host's objects read-only (objects/info/alternates). It starts as a copy of the host's
 * refs and index, on branch `sbx/NAME` (a plain sandbox) or the worktree's branch, at the host's
 * HEAD. The host sees its branches as `refs/remotes/sbx/NAME/*`, brought in by importHistory: a git
 * bundle made inside (through the engine), fetched on the host with the hardened git.
 */

/** Where the host's git folder is mounted, read-only, inside. */
export const HOST_GIT = '/run/sbx/host-git';
/** The label naming a sandbox's private git volume, and the one naming the folder it is mounted at. */
export const GIT_VOLUME_LABEL = 'dev.sbx.git-volume';
export const GIT_DIR_LABEL = 'dev.sbx.git-dir';

export interface PrivateGit {
  /** The volume holding the sandbox's git folder. */
  volume: string;
  /** Where it is mounted inside: the path git finds for the workspace. */
  gitDir: string;
  /** The branch the sandbox starts on. */
  branch: string;
  /** Where the host's index and HEAD are, read-only inside (under HOST_GIT). */
  hostGitDir: string;
  mounts: Docker.MountSettings[];
  labels: Record<string, string>;
}

/**
 * The private git of a new sandbox of WORKSPACE, or undefined when the workspace is not the top of a
 * repository (or a worktree sbx made: WORKTREE): then no host git folder is mounted at all.
 */
export function privateGit(
  name: string,
  workspace: string,
  worktree: { path: string; branch: string; repository: string } | undefined,
): PrivateGit | undefined {
  const volume = `${name}-git`;
  if (worktree) {
    const repo: HostRepository = { top: worktree.repository, common: join(worktree.repository, '.git') };
    const own = worktreeGitDir(repo, worktree.path);
    if (!own) return undefined;
    return {
      volume,
      gitDir: own,
      branch: worktree.branch,
      hostGitDir: join(HOST_GIT, own.slice(repo.common.length + 1)),
      mounts: [
        { Type: 'bind', Source: repo.common, Target: HOST_GIT, ReadOnly: true },
        { Type: 'volume', Source: volume, Target: own },
        {
          Type: 'bind',
          Source: join(worktree.path, '.git'),
          Target: join(worktree.path, '.git'),
          ReadOnly: true,
        },
      ],
      labels: { [GIT_VOLUME_LABEL]: volume, [GIT_DIR_LABEL]: own },
    };
  }
  const repo = findRepository(workspace);
  if (!repo || repo.top !== workspace) return undefined;
  return {
    volume,
    gitDir: repo.common,
    branch: `sbx/${name}`,
    hostGitDir: HOST_GIT,
    mounts: [
      { Type: 'bind', Source: repo.common, Target: HOST_GIT, ReadOnly: true },
      { Type: 'volume', Source: volume, Target: repo.common },
    ],
    labels: { [GIT_VOLUME_LABEL]: volume, [GIT_DIR_LABEL]: repo.common },
  };
}

/**
 * Seeds the sandbox's git folder before the sandbox starts (a created container): a valid git folder
 * on its branch, borrowing the host's objects, so git inside (sbx-init's included) finds a repository;
 * initScript then copies the host's refs and index. Owned by the workspace owner.
 */
export async function seedGit(containerId: string, git: PrivateGit, uid: number, gid: number): Promise<void> {
  const { pack } = await import('tar-stream');
  const { putArchive } = await import('../engine/volumes.js');
  const archive = pack();
  const file = (name: string, text: string) => archive.entry({ name, mode: 0o644, uid, gid }, text);
  const dir = (name: string) => archive.entry({ name, type: 'directory', mode: 0o755, uid, gid });
  for (const d of ['objects', 'objects/info', 'refs', 'refs/heads', 'refs/tags', 'info', 'hooks']) dir(d);
  file('HEAD', `ref: refs/heads/${git.branch}\n`);
  file('config', '[core]\n\trepositoryformatversion = 0\n\tbare = false\n');
  file('objects/info/alternates', `${HOST_GIT}/objects\n`);
  archive.finalize();
  await putArchive(containerId, git.gitDir, archive as unknown as import('node:stream').Readable);
}

const sh = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * The script (run as root inside, once: it does nothing when the folder is a git folder already)
 * that makes the sandbox's git folder: the host's config, refs and index copied, objects borrowed.
 */
export function initScript(git: PrivateGit, uid: number, gid: number): string {
  const g = sh(git.gitDir);
  const h = sh(HOST_GIT);
  return `set -e
G=${g}; H=${h}; W=${sh(git.hostGitDir)}
[ -e "$G/sbx-made" ] && exit 0
mkdir -p "$G/objects/info" "$G/refs/heads" "$G/refs/tags" "$G/info"
echo "$H/objects" > "$G/objects/info/alternates"
cp "$H/config" "$G/config" 2>/dev/null || printf '[core]\\n\\trepositoryformatversion = 0\\n' > "$G/config"
cp -R "$H/refs/heads/." "$G/refs/heads/" 2>/dev/null || true
cp -R "$H/refs/tags/." "$G/refs/tags/" 2>/dev/null || true
cp "$H/packed-refs" "$G/packed-refs" 2>/dev/null || true
cp "$H/info/exclude" "$G/info/exclude" 2>/dev/null || true
cp "$W/index" "$G/index" 2>/dev/null || true
# An image without git (a dev container's own): nothing inside reads the folder, which stays this copy.
if ! command -v git >/dev/null 2>&1; then chown -R ${uid}:${gid} "$G"; touch "$G/sbx-made"; exit 0; fi
git config --file "$G/config" --unset-all core.worktree 2>/dev/null || true
git config --file "$G/config" core.bare false
BASE=$(git --git-dir="$W" rev-parse --verify -q HEAD || true)
[ -n "$BASE" ] && git --git-dir="$G" update-ref ${sh(`refs/heads/${git.branch}`)} "$BASE"
chown -R ${uid}:${gid} "$G"
touch "$G/sbx-made"
`;
}

export interface ImportResult {
  /** The refs now under refs/remotes/sbx/NAME/, with their commits. */
  refs: Array<{ ref: string; commit: string }>;
}

const SAFE_REF = /^refs\/heads\/[A-Za-z0-9._/-]{1,200}$/;
const SHA = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

/**
 * Brings the sandbox's branches to the host as refs/remotes/sbx/NAME/<branch>: the list and a bundle of
 * what the host lacks are made inside (git run in the sandbox), streamed out through the engine, and
 * fetched on the host with the hardened git (objects checked, nothing of the sandbox's run). The
 * sandbox must be running.
 */
export async function importHistory(sandbox: {
  id: string;
  name: string;
  gitDir: string;
  repository: HostRepository;
}): Promise<ImportResult> {
  const { execCapture } = await import('../engine/exec.js');
  const listed = await execCapture(sandbox.id, [
    'git',
    `--git-dir=${sandbox.gitDir}`,
    'for-each-ref',
    '--format=%(objectname) %(refname)',
    'refs/heads/',
  ]);
  if (listed.code !== 0)
    throw new Error(`git in ${sandbox.name} could not list its branches: ${listed.stderr.trim()}`);
  const refs: Array<{ ref: string; commit: string }> = [];
  for (const line of listed.stdout.split('\n')) {
    const [commit, ref] = line.split(' ');
    if (
      commit &&
      ref &&
      SHA.test(commit) &&
      SAFE_REF.test(ref) &&
      !ref.includes('..') &&
      !ref.endsWith('.lock')
    )
      refs.push({ ref: ref.slice('refs/heads/'.length), commit });
  }
  const repo = sandbox.repository;
  const missing: string[] = [];
  for (const { ref, commit } of refs)
    await hostGit(repo, ['cat-file', '-e', `${commit}^{commit}`]).catch(() =>
      missing.push(`refs/heads/${ref}`),
    );
  if (missing.length > 0) {
    const tips = (
      await hostGit(repo, [
        'for-each-ref',
        '--format=%(objectname)',
        'refs/heads/',
        'refs/tags/',
        'refs/remotes/',
      ])
    )
      .split('\n')
      .filter((s) => SHA.test(s))
      .slice(0, 2000);
    const dir = mkdtempSync(join(tmpdir(), 'sbx-bundle-'));
    try {
      const file = join(dir, 'sandbox.bundle');
      const out = createWriteStream(file, { mode: 0o600 });
      const made = await execCapture(
        sandbox.id,
        ['git', `--git-dir=${sandbox.gitDir}`, 'bundle', 'create', '-', ...missing, '--not', ...tips],
        { stdout: out },
      );
      await new Promise<void>((resolve, reject) =>
        out.end((err?: Error | null) => (err ? reject(err) : resolve())),
      );
      if (made.code !== 0)
        throw new Error(`git in ${sandbox.name} could not bundle its commits: ${made.stderr.trim()}`);
      await hostGit(repo, [
        '-c',
        'transfer.fsckObjects=true',
        'fetch',
        '--no-tags',
        '--no-write-fetch-head',
        '--no-recurse-submodules',
        '--no-auto-gc',
        '--quiet',
        file,
        ...missing.map((ref, i) => `${ref}:refs/sbx-import/${i}`),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const prefix = `refs/remotes/sbx/${sandbox.name}/`;
  const existing = (await hostGit(repo, ['for-each-ref', '--format=%(refname)', prefix, 'refs/sbx-import/']))
    .split('\n')
    .filter(Boolean);
  const wanted = new Set(refs.map((r) => prefix + r.ref));
  const commands = [
    ...existing.filter((r) => !wanted.has(r)).map((r) => `delete ${r}`),
    ...refs.map((r) => `update ${prefix}${r.ref} ${r.commit}`),
  ];
  if (commands.length > 0)
    await hostGit(repo, ['update-ref', '--stdin'], { input: Buffer.from(`${commands.join('\n')}\n`) });
  return { refs };
}

/** The host repository of a sandbox whose private git is at GITDIR (a label sbx set). */
export function repositoryOfGitDir(gitDir: string): HostRepository | undefined {
  const common = gitDir.includes('/.git/worktrees/')
    ? gitDir.slice(0, gitDir.indexOf('/.git/worktrees/') + 5)
    : gitDir;
  if (!common.endsWith('/.git')) return undefined;
  return { top: common.slice(0, -5), common };
}
