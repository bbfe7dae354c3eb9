import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { AGENTS, type AgentSpec } from '../agents/registry.js';
import { runHelper } from '../engine/containers.js';
import { ensureVolume, listVolumes, putArchive } from '../engine/volumes.js';
import { currentUser, extraLabels, LABEL } from '../shared/labels.js';
import type { CredentialsMode } from '../shared/parse.js';

/**
 * One host user's login volume of an agent: the agent's credential files only (see
 * AgentState.credentials), shared by that user's sandboxes of the agent and by no one else's.
 * SBX_STATE_PREFIX renames them (tests).
 */
export const loginVolume = (agent: string, user = currentUser(), env: NodeJS.ProcessEnv = process.env) =>
  `${env.SBX_STATE_PREFIX ?? 'sbx-login-'}${agent}-${user || 'user'}`;

/**
 * The volume sbx kept an agent's whole state in before logins were per user: shared by every
 * sandbox of the agent, every project and every host user. Never mounted again; its owner's login
 * is copied out of it once (see migrateLogin).
 */
export const legacyStateVolume = (agent: string, env: NodeJS.ProcessEnv = process.env) =>
  `${env.SBX_STATE_PREFIX ?? 'sbx-state-'}${agent}`;

/** Where a sandbox mounts the login volume of each agent (its files at their paths in the home). */
export const LOGIN_ROOT = '/var/lib/sbx/login';

/** Agents that keep state, among the names an image's dev.sbx.agents label lists. */
export const statefulAgents = (names: string[]): AgentSpec[] =>
  AGENTS.filter((a) => a.state && names.includes(a.name));

export interface CredentialsPlan {
  /** Named login volumes to mount (created first, labelled). */
  volumes: Array<{ agent: string; name: string; target: string }>;
  /** Host paths to bind (host mode). */
  binds: string[];
  /** Container variables: the agents' state-dir variables and sbx-init's instructions. */
  env: string[];
  warnings: string[];
}

/**
 * Where the agents' state lives in a new sandbox. sandbox: the agent's folder stays in the sandbox
 * (its own, so nothing one project writes there runs in another); only the login is shared, through
 * the user's login volume of the agent, whose files sbx-init links into the home (or the agent's
 * login variable points at); host: the host's own folders, mounted; none: nothing outlives it.
 */
export function credentialsPlan(
  mode: CredentialsMode,
  agents: AgentSpec[],
  home: string,
  hostHome: string,
  hostExists: (path: string) => boolean = existsSync,
  user = currentUser(),
): CredentialsPlan {
  const plan: CredentialsPlan = { volumes: [], binds: [], env: [], warnings: [] };
  if (mode === 'none') return plan;
  const dirs: string[] = [];
  const logins: string[] = [];
  const links: string[] = [];
  for (const agent of agents) {
    const state = agent.state!;
    if (mode === 'host') {
      const present = state.host.filter((p) => hostExists(join(hostHome, p)));
      for (const p of present) plan.binds.push(`${join(hostHome, p)}:${join(home, p)}`);
      plan.warnings.push(
        `--credentials host: the sandbox can read and change your host's ${agent.name} login and settings (${present.map((p) => `~/${p}`).join(', ') || 'none exist yet'}).`,
      );
      continue;
    }
    const dir = join(home, state.dir);
    const login = `${LOGIN_ROOT}/${agent.name}`;
    plan.volumes.push({ agent: agent.name, name: loginVolume(agent.name, user), target: login });
    dirs.push(dir);
    logins.push(login);
    if (state.dirEnv) plan.env.push(`${state.dirEnv}=${dir}`);
    if (state.credentialsEnv && state.credentials[0])
      plan.env.push(`${state.credentialsEnv}=${join(login, dirname(state.credentials[0]))}`);
    for (const file of state.credentials) links.push(`${join(home, file)}=${join(login, file)}`);
  }
  if (dirs.length) plan.env.push(`SBX_STATE_DIRS=${dirs.join(':')}`);
  if (logins.length) plan.env.push(`SBX_LOGIN_DIRS=${logins.join(':')}`);
  if (links.length) plan.env.push(`SBX_LOGIN_LINKS=${links.join(':')}`);
  return plan;
}

/**
 * Makes the plan's login volumes exist (labelled with their agent and user) and, in host mode, the
 * agents' main host folders. A login volume made here for the first time gets its user's login from
 * the old shared state volume (see migrateLogin); what that says comes back as notes.
 */
export async function prepareCredentials(
  plan: CredentialsPlan,
  agents: AgentSpec[],
  mode: CredentialsMode,
  hostHome: string,
  labels: Record<string, string>,
  options: { user?: string; insideUid?: number } = {},
): Promise<{ mounts: Docker.MountSettings[]; notes: string[] }> {
  if (mode === 'host') {
    // A missing folder would be created by the engine as root's; make it the user's.
    for (const agent of agents) mkdirSync(join(hostHome, agent.state!.dir), { recursive: true });
  }
  const notes: string[] = [];
  const user = options.user ?? currentUser();
  const existing = plan.volumes.length
    ? new Set((await listVolumes([LABEL.state])).map((v) => v.name))
    : new Set<string>();
  for (const v of plan.volumes) {
    await ensureVolume(v.name, {
      ...labels,
      [LABEL.state]: v.agent,
      ...(user ? { [LABEL.user]: user } : {}),
    });
    const legacy = legacyStateVolume(v.agent);
    if (!existing.has(v.name) && existing.has(legacy)) {
      const agent = agents.find((a) => a.name === v.agent)!;
      notes.push(await migrateLogin(agent, legacy, v.name, options.insideUid ?? Number(user || 0)));
    }
  }
  return {
    mounts: plan.volumes.map((v) => ({ Type: 'volume', Source: v.name, Target: v.target })),
    notes,
  };
}

/**
 * Copies the login files (and nothing else) from the old shared state volume into the user's new
 * login volume, when they belong to this user (their owner there is the UID this user's sandboxes
 * have inside): another user's login is never handed over. Symlinks are not copied. The old volume
 * is left as it was: it is the user's to remove (`sbx auth rm AGENT --legacy`).
 */
export async function migrateLogin(
  agent: AgentSpec,
  legacy: string,
  volume: string,
  insideUid: number,
): Promise<string> {
  const state = agent.state!;
  // The old volume was mounted on the agent's folder; its other folders were linked into .sbx-links.
  const copies = state.credentials.map((file) => {
    const old = file.startsWith(`${state.dir}/`)
      ? `/old/${file.slice(state.dir.length + 1)}`
      : `/old/.sbx-links/${file}`;
    return `if [ -e '${old}' ] && [ ! -L '${old}' ] && [ "$(stat -c %u '${old}')" = '${insideUid}' ]; then mkdir -p "$(dirname '/new/${file}')" && cp -a '${old}' '/new/${file}' && echo '${file}'; fi`;
  });
  const { output, code } = await runHelper({
    Image: HELPER_IMAGE,
    Entrypoint: ['sh', '-c'],
    Cmd: [copies.join('; ')],
    Labels: extraLabels(),
    HostConfig: {
      Mounts: [
        { Type: 'volume', Source: legacy, Target: '/old', ReadOnly: true },
        { Type: 'volume', Source: volume, Target: '/new' },
      ],
      NetworkMode: 'none',
    },
  }).catch(() => ({ output: '', code: -1 }));
  const copied = output.split('\n').filter((l) => state.credentials.includes(l.trim()));
  const left = `${legacy}, the volume every ${agent.name} sandbox of every project and user shared before, is no longer mounted and was left as it was: remove it with \`sbx auth rm ${agent.name} --legacy\` once no one needs it.`;
  return copied.length && code === 0
    ? `Your ${agent.name} login (${copied.join(', ')}) was copied into ${volume}, which only your sandboxes of ${agent.name} share. ${left}`
    : `${agent.name}: no login of yours was found to copy into ${volume}. ${left}`;
}

/** The image helper containers run from: the base template, which every sbx image starts from. */
export const HELPER_IMAGE = 'sbx/base:latest';

export const hostHome = () => homedir();

/**
 * Copies the host's user instructions and customisations of an agent (its `sync` list) into the
 * sandbox's state, owned by the sandbox user. Login files are not in that list, so a login stored in
 * the sandbox is never overwritten, and nothing there is deleted.
 */
export async function syncConfig(
  agent: AgentSpec,
  sandbox: { id: string; uid: number; gid: number },
  home: string,
  fromHome = hostHome(),
): Promise<string[]> {
  const entries = (agent.state?.sync ?? []).filter((p) => existsSync(join(fromHome, p)));
  if (entries.length === 0) return [];
  const { default: tar } = await import('tar-fs');
  const archive = tar.pack(fromHome, {
    entries,
    map: (header) => ({ ...header, uid: sandbox.uid, gid: sandbox.gid }),
  });
  await putArchive(sandbox.id, home, archive as unknown as Readable);
  return entries;
}
