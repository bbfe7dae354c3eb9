/**
 * The workspace is a project, not a home (issue 26, point 6): what a new sandbox may mount. `/`, the
 * user's home and its parents, and any folder that holds sbx's config or cache folder are refused as
 * workspaces unless the user says --allow-home-workspace (then with a warning, and sbx's folders
 * hidden inside); a workspace inside sbx's folders, and a -v whose source holds or is inside them,
 * are refused always. Paths are compared as real paths, so a symlink changes nothing.
 */
import { existsSync, mkdirSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import type Docker from 'dockerode';
import { cacheDir, configDir } from '../config/config.js';
import { usageError } from '../shared/errors.js';
import type { VolumeMount } from '../shared/parse.js';

/** The flag that lets a home (or `/`, or a parent of sbx's folders) be a workspace. */
export const ALLOW_HOME_FLAG = '--allow-home-workspace';

export interface PrivateFolders {
  home: string;
  /** sbx's config folder (secrets.json, the egress CA's key) and cache folder, as real paths. */
  sbx: string[];
}

/** A path's real path, also when it does not exist yet (its nearest existing parent's, plus the rest). */
export function realPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realPath(parent), basename(path));
  }
}

/** The folders a sandbox must not get, as real paths. */
export function privateFolders(env: NodeJS.ProcessEnv = process.env): PrivateFolders {
  return { home: realPath(homedir()), sbx: [realPath(configDir(env)), realPath(cacheDir(env))] };
}

/** `inner` is `outer` or inside it (both real, absolute paths). */
export function within(outer: string, inner: string): boolean {
  const rel = relative(outer, inner);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

export type WorkspaceProblem =
  | { kind: 'insideSbx'; folder: string }
  | { kind: 'root' }
  | { kind: 'home' }
  | { kind: 'holdsHome' }
  | { kind: 'holdsSbx'; folder: string };

/** Why a real path cannot be a workspace (pure), or undefined. insideSbx is never allowed; the rest with the flag. */
export function workspaceProblem(workspace: string, folders: PrivateFolders): WorkspaceProblem | undefined {
  const inside = folders.sbx.find((f) => within(f, workspace));
  if (inside) return { kind: 'insideSbx', folder: inside };
  if (dirname(workspace) === workspace) return { kind: 'root' };
  if (workspace === folders.home) return { kind: 'home' };
  if (within(workspace, folders.home)) return { kind: 'holdsHome' };
  const holds = folders.sbx.find((f) => within(workspace, f));
  if (holds) return { kind: 'holdsSbx', folder: holds };
  return undefined;
}

const describe = (workspace: string, p: WorkspaceProblem): string => {
  switch (p.kind) {
    case 'insideSbx':
      return `${workspace} is inside sbx's own folder ${p.folder}`;
    case 'root':
      return `${workspace} is the root of the file system`;
    case 'home':
      return `${workspace} is your home folder`;
    case 'holdsHome':
      return `${workspace} holds your home folder`;
    case 'holdsSbx':
      return `${workspace} holds sbx's own folder ${p.folder}`;
  }
};

/**
 * Checks a new sandbox's workspace and -v sources (before anything is made) and says what the
 * sandbox must hide: with the flag, sbx's folders inside the workspace (made if missing, so that the
 * hiding mount has its place), each covered by an empty read-only tmpfs.
 */
export function checkMounts(
  workspace: string,
  volumes: VolumeMount[],
  allowHome: boolean,
  folders: PrivateFolders = privateFolders(),
): { warnings: string[]; mounts: Docker.MountSettings[]; hidden: string[] } {
  const real = realPath(workspace);
  const problem = workspaceProblem(real, folders);
  if (problem?.kind === 'insideSbx')
    throw usageError(
      `The workspace ${describe(real, problem)}, which holds its configuration, secrets and cache: no sandbox may see it. Nothing was created.`,
      'Run sbx in a project folder outside it.',
    );
  if (problem && !allowHome)
    throw usageError(
      `The workspace ${describe(real, problem)}: a sandbox there could read every file in it (keys, sbx's secrets) and change them (your shell's startup files). A workspace is one project's folder. Nothing was created.`,
      `Run sbx in the project's folder (e.g. cd ~/src/PROJECT), or, if you really mean it, add ${ALLOW_HOME_FLAG}.`,
    );
  for (const v of volumes) {
    const source = realPath(v.host);
    const clash = folders.sbx.find((f) => within(f, source) || within(source, f));
    if (clash)
      throw usageError(
        `The volume ${v.host}:${v.container} would show sbx's own folder ${clash} (its configuration, secrets and cache) inside the sandbox. Nothing was created.`,
        `Mount a folder that neither holds nor is inside ${clash}.`,
      );
  }
  if (!problem) return { warnings: [], mounts: [], hidden: [] };
  const hidden = folders.sbx.filter((f) => within(real, f));
  for (const f of hidden) mkdirSync(f, { recursive: true, mode: 0o700 });
  return {
    warnings: [
      `${ALLOW_HOME_FLAG}: ${describe(real, problem)}; the agent can read and change everything in it (your keys, your shell's startup files) except sbx's own folders, which are hidden.`,
    ],
    mounts: hidden
      .filter((f) => existsSync(f))
      .map((f) => ({ Type: 'tmpfs', Source: '', Target: f, ReadOnly: true })),
    hidden,
  };
}
