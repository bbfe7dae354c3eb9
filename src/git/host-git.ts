import { execFile } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { SbxError } from '../shared/errors.js';

/**
 * The only way sbx runs git on the host. A sandbox can write the workspace, and (for --branch) a
 * worktree's private git folder, so every file git would consult to find its repository or its
 * configuration is hostile: a `.git` file or `commondir` pointing at a folder of the sandbox's, a
 * config with `core.fsmonitor`, hooks, filter drivers. So sbx, not git, decides where the repository
 * is (a real `.git` folder it found itself, never a gitfile or `commondir` followed), and git reads
 * no configuration of the repository's: its common folder is seen through a "shadow" folder sbx
 * makes for the one command, holding a config sbx wrote (the few format keys, and the identity, read
 * as data) and links to the repository's objects, refs and worktrees. The user's own system and global
 * configuration still apply (they are the user's), with the settings that run commands or reach out
 * overridden on the command line, and an environment with no GIT_* variable of the caller's.
 */

/** Where a repository is, as sbx found it (never as a gitfile or commondir says). */
export interface HostRepository {
  /** The main checkout's top folder. */
  top: string;
  /** Its `.git` folder: the common git folder (objects, refs, config, worktrees). */
  common: string;
}

/** `-c` settings every host git command gets: nothing runs, nothing is asked, nothing is fetched. */
export const HARDENED_CONFIG: readonly string[] = [
  'core.fsmonitor=false',
  'core.hooksPath=/dev/null',
  'core.untrackedCache=false',
  'core.pager=cat',
  'core.editor=true',
  'core.sshCommand=false',
  'core.askPass=false',
  'credential.helper=',
  'diff.external=',
  'submodule.recurse=false',
  'fetch.recurseSubmodules=false',
  'diff.ignoreSubmodules=all',
  'status.submoduleSummary=false',
  'protocol.allow=never',
  'protocol.file.allow=always',
  'gc.auto=0',
  'maintenance.auto=false',
  'color.ui=false',
  'advice.detachedHead=false',
  'safe.bareRepository=explicit',
];

/** The environment of a host git command: the caller's without GIT_*, and no prompt, pager or replace. */
export function hardenedEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('GIT_') && k !== 'PAGER' && k !== 'SSH_ASKPASS') env[k] = v;
  return {
    ...env,
    GIT_TERMINAL_PROMPT: '0',
    GIT_NO_REPLACE_OBJECTS: '1',
    GIT_OPTIONAL_LOCKS: '0',
    GIT_PAGER: 'cat',
    PAGER: 'cat',
    GIT_ATTR_NOSYSTEM: '1',
    GIT_PROTOCOL_FROM_USER: '0',
    ...extra,
  };
}

const isRealDir = (path: string) => {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
};

/**
 * The repository holding FOLDER, found by sbx: the nearest parent (FOLDER included) with a real `.git`
 * folder (not a symlink). A `.git` file (a worktree's) is followed only to a folder
 * `<repo>/.git/worktrees/<id>`, and its repository is `<repo>` (its `commondir` is not read).
 * Undefined when there is none.
 */
export function findRepository(folder: string): HostRepository | undefined {
  for (let dir = resolve(folder); ; dir = dirname(dir)) {
    const dotGit = join(dir, '.git');
    if (isRealDir(dotGit)) return { top: dir, common: dotGit };
    let stat: ReturnType<typeof lstatSync> | undefined;
    try {
      stat = lstatSync(dotGit);
    } catch {}
    if (stat?.isFile()) {
      const gitdir = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'))?.[1]?.trim();
      const target = gitdir ? resolve(dir, gitdir) : '';
      const common = dirname(dirname(target));
      if (target && dirname(target).endsWith('/.git/worktrees') && isRealDir(common) && isRealDir(target))
        return { top: dirname(common), common };
      return undefined;
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * A worktree's private git folder in REPO: the `worktrees/<id>` folder whose `gitdir` names
 * `<path>/.git`, found by sbx (the worktree's own `.git` file is not trusted). Undefined when none.
 */
export function worktreeGitDir(repo: HostRepository, path: string): string | undefined {
  const base = join(repo.common, 'worktrees');
  if (!isRealDir(base)) return undefined;
  const want = join(resolve(path), '.git');
  for (const id of readdirSync(base)) {
    const dir = join(base, id);
    if (!isRealDir(dir)) continue;
    try {
      if (resolve(dir, readFileSync(join(dir, 'gitdir'), 'utf8').trim()) === want) return dir;
    } catch {}
  }
  return undefined;
}

/** The keys of the repository's config the shadow config carries (values checked), read as data. */
const CARRIED: Record<string, RegExp> = {
  'core.repositoryformatversion': /^[01]$/,
  'extensions.objectformat': /^(sha1|sha256)$/,
  'core.filemode': /^(true|false)$/,
  'core.ignorecase': /^(true|false)$/,
  'core.symlinks': /^(true|false)$/,
  'core.precomposeunicode': /^(true|false)$/,
  'user.name': /^[^\n\0]{1,200}$/,
  'user.email': /^[^\n\0]{1,200}$/,
};

const quote = (value: string) => `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;

/** Runs git once, as hardened; resolves its output, rejects with its stderr. */
function run(args: string[], env: NodeJS.ProcessEnv, cwd: string, input?: Buffer): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      'git',
      [...HARDENED_CONFIG.flatMap((c) => ['-c', c]), '--no-pager', ...args],
      { env, cwd, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err) {
          const failure = new Error((stderr || err.message).trim()) as Error & { code?: unknown };
          failure.code = (err as { code?: unknown }).code;
          reject(failure);
        } else resolvePromise(stdout);
      },
    );
    if (input) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

/** The repository's own config, read as data by git (no include followed, nothing run). */
async function carriedConfig(common: string): Promise<Record<string, string>> {
  const file = join(common, 'config');
  if (!existsSync(file)) return {};
  const listed = await run(
    ['config', '--file', file, '--no-includes', '--null', '--list'],
    hardenedEnv(),
    '/',
  ).catch(() => '');
  const found: Record<string, string> = {};
  for (const entry of listed.split('\0')) {
    const at = entry.indexOf('\n');
    if (at <= 0) continue;
    const key = entry.slice(0, at).toLowerCase();
    const value = entry.slice(at + 1);
    if (CARRIED[key]?.test(value)) found[key] = value;
  }
  return found;
}

/** Entries of the common folder git reads as data, seen through the shadow. Never config or hooks. */
const LINKED = ['objects', 'refs', 'packed-refs', 'logs', 'info', 'worktrees', 'shallow', 'FETCH_HEAD'];

/**
 * Makes the shadow common folder of REPO (in a fresh private temporary folder): a config sbx wrote,
 * and links to what git needs as data. The caller removes it.
 */
async function shadowOf(repo: HostRepository): Promise<string> {
  const carried = await carriedConfig(repo.common);
  // Named .git, so git takes its parent for the main worktree's path (sbx's callers know the real one).
  const shadow = join(mkdtempSync(join(tmpdir(), 'sbx-git-')), '.git');
  mkdirSync(shadow);
  const sections = new Map<string, string[]>();
  sections.set('core', ['\tbare = false']);
  for (const [key, value] of Object.entries(carried)) {
    const [section, name] = [key.slice(0, key.lastIndexOf('.')), key.slice(key.lastIndexOf('.') + 1)];
    sections.set(section, [...(sections.get(section) ?? []), `\t${name} = ${quote(value)}`]);
  }
  writeFileSync(
    join(shadow, 'config'),
    [...sections].map(([s, lines]) => `[${s}]\n${lines.join('\n')}\n`).join(''),
    { mode: 0o600 },
  );
  // Only what exists is linked: what git would make anew (worktrees/, say) the caller makes first.
  for (const entry of LINKED)
    if (existsSync(join(repo.common, entry))) symlinkSync(join(repo.common, entry), join(shadow, entry));
  // The main worktree's HEAD, which git reads from the common folder (a branch checked out there is
  // then not checked out again elsewhere): a copy, when it is a small regular file.
  try {
    const head = join(repo.common, 'HEAD');
    if (lstatSync(head).isFile() && lstatSync(head).size < 1024) copyFileSync(head, join(shadow, 'HEAD'));
  } catch {}
  return shadow;
}

export interface HostGitOptions {
  /** The work tree: the repository's top (default) or a worktree's folder. */
  workTree?: string;
  /** The git folder with HEAD and the index: the common folder (default) or a worktree's own. */
  gitDir?: string;
  /** Bytes for git's standard input. */
  input?: Buffer;
}

/**
 * Runs `git ARGS` on the host in REPO (found by findRepository, or known to sbx), hardened: git finds
 * nothing by itself (GIT_DIR, GIT_WORK_TREE and GIT_COMMON_DIR set by sbx), reads no configuration of
 * the repository's (see the top of this file), runs no hook, fsmonitor, pager, editor, ssh or
 * external diff, reaches no network, and never recurses into submodules.
 */
export async function hostGit(
  repo: HostRepository,
  args: string[],
  options: HostGitOptions = {},
): Promise<string> {
  if (!isRealDir(repo.common))
    throw new SbxError('conflict', `${repo.common} is not a git folder (it is missing or a symbolic link).`, {
      hint: 'Check the repository on the host with git yourself.',
    });
  const shadow = await shadowOf(repo);
  try {
    const gitDir = options.gitDir ?? repo.common;
    const workTree = options.workTree ?? repo.top;
    return await run(
      args,
      hardenedEnv({ GIT_DIR: gitDir, GIT_COMMON_DIR: shadow, GIT_WORK_TREE: workTree }),
      workTree,
      options.input,
    );
  } finally {
    rmSync(dirname(shadow), { recursive: true, force: true });
  }
}

/**
 * Runs `git ARGS` on the host outside any repository (config queries of the user's own settings):
 * hardened as hostGit, from a fresh empty folder so git finds no repository.
 */
export async function hostGitNoRepo(args: string[]): Promise<string> {
  const empty = mkdtempSync(join(tmpdir(), 'sbx-git-'));
  try {
    return await run(args, hardenedEnv({ GIT_CEILING_DIRECTORIES: dirname(empty) }), empty);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
}
