import { createHash } from 'node:crypto';
import { realpathSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { notFoundError } from '../cli/errors.js';

/** sbx's labels: every sandbox is found again by these, never by a state file. */
export const LABEL = {
  managed: 'dev.sbx.managed',
  workspace: 'dev.sbx.workspace',
  agent: 'dev.sbx.agent',
  template: 'dev.sbx.template.ref',
  version: 'dev.sbx.version',
  uid: 'dev.sbx.uid',
  gid: 'dev.sbx.gid',
  /** Set on sandboxes made with --name; the others are their workspace's default sandbox. */
  named: 'dev.sbx.named',
  /** The credentials mode a sandbox was created with (sandbox, host, none). */
  credentials: 'dev.sbx.credentials',
  /** Branch sandboxes (--branch): the branch, the repository it is a worktree of, and its base. */
  branch: 'dev.sbx.branch',
  repository: 'dev.sbx.repository',
  from: 'dev.sbx.from',
  /** The -p mappings a sandbox was created with (JSON), published by its port forwarder. */
  ports: 'dev.sbx.ports',
  /** Set when a sandbox has the Docker socket (--mount-docker-socket, or a -v of a socket). */
  dockerSocket: 'dev.sbx.docker-socket',
  /** Synced sandboxes (an engine that cannot see the workspace): the volume holding its copy. */
  sync: 'dev.sbx.sync-volume',
  /** Set when a sandbox was made with --no-sudo. */
  noSudo: 'dev.sbx.no-sudo',
  /** Set on state volumes: the agent whose state it holds. */
  state: 'dev.sbx.state',
  /** Set on images: the agents installed in them. */
  agents: 'dev.sbx.agents',
} as const;

/** The workspace: the given folder or the current one, as its real path. */
export function resolveWorkspace(arg: string | undefined, cwd = process.cwd()): string {
  const path = resolve(cwd, arg ?? '.');
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    throw notFoundError(
      `The workspace ${path} does not exist.`,
      'Give an existing folder, or run sbx inside your project folder.',
    );
  }
  if (!statSync(real).isDirectory()) {
    throw notFoundError(
      `The workspace ${real} is not a folder.`,
      'Give the project folder, not a file in it.',
    );
  }
  return real;
}

/** The default sandbox's name: readable, and unique per workspace path. */
export function sandboxName(workspace: string): string {
  const slug =
    basename(workspace)
      .toLowerCase()
      .replace(/[^a-z0-9_.-]+/g, '-')
      .replace(/^[-.]+|[-.]+$/g, '')
      .slice(0, 40) || 'root';
  const hash = createHash('sha256').update(workspace).digest('hex').slice(0, 8);
  return `sbx-${slug}-${hash}`;
}

/** Extra labels for everything sbx creates, from SBX_LABELS ("k=v,k2=v2"), e.g. to clean up after CI. */
export function extraLabels(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (env.SBX_LABELS ?? '').split(',')) {
    const [key, ...value] = pair.split('=');
    if (key?.trim()) out[key.trim()] = value.join('=').trim();
  }
  return out;
}

/** Said on every run of a sandbox that has the Docker socket. */
export const DOCKER_SOCKET_WARNING =
  'this sandbox has the Docker socket: whatever runs in it (the agent included) can take root on the host through it.';
