import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { AGENTS, type AgentSpec } from '../agents/registry.js';
import { ensureVolume, putArchive } from '../engine/volumes.js';
import { LABEL } from '../shared/labels.js';
import type { CredentialsMode } from '../shared/parse.js';

/** The volume that holds an agent's state for every sandbox of that agent. SBX_STATE_PREFIX renames them (tests). */
export const stateVolume = (agent: string, env: NodeJS.ProcessEnv = process.env) =>
  `${env.SBX_STATE_PREFIX ?? 'sbx-state-'}${agent}`;

/** Agents that keep state, among the names an image's dev.sbx.agents label lists. */
export const statefulAgents = (names: string[]): AgentSpec[] =>
  AGENTS.filter((a) => a.state && names.includes(a.name));

export interface CredentialsPlan {
  /** Named state volumes to mount (created first, labelled). */
  volumes: Array<{ agent: string; name: string; target: string }>;
  /** Host paths to bind (host mode). */
  binds: string[];
  /** Container variables: the agents' state-dir variables and sbx-init's instructions. */
  env: string[];
  warnings: string[];
}

/**
 * Where the agents' state lives in a new sandbox. sandbox: one volume per agent, mounted on its state
 * folder (other state folders are symlinked into it by sbx-init); host: the host's own folders,
 * mounted; none: nothing, so the state goes with the container.
 */
export function credentialsPlan(
  mode: CredentialsMode,
  agents: AgentSpec[],
  home: string,
  hostHome: string,
  hostExists: (path: string) => boolean = existsSync,
): CredentialsPlan {
  const plan: CredentialsPlan = { volumes: [], binds: [], env: [], warnings: [] };
  if (mode === 'none') return plan;
  const dirs: string[] = [];
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
    const target = join(home, state.dir);
    plan.volumes.push({ agent: agent.name, name: stateVolume(agent.name), target });
    dirs.push(target);
    if (state.dirEnv) plan.env.push(`${state.dirEnv}=${target}`);
    for (const link of state.links ?? [])
      links.push(`${join(home, link)}=${join(target, '.sbx-links', link)}`);
  }
  if (dirs.length) plan.env.push(`SBX_STATE_DIRS=${dirs.join(':')}`);
  if (links.length) plan.env.push(`SBX_STATE_LINKS=${links.join(':')}`);
  return plan;
}

/** Makes the plan's volumes exist (labelled) and, in host mode, the agents' main host folders. */
export async function prepareCredentials(
  plan: CredentialsPlan,
  agents: AgentSpec[],
  mode: CredentialsMode,
  hostHome: string,
  labels: Record<string, string>,
): Promise<Docker.MountSettings[]> {
  if (mode === 'host') {
    // A missing folder would be created by the engine as root's; make it the user's.
    for (const agent of agents) mkdirSync(join(hostHome, agent.state!.dir), { recursive: true });
  }
  for (const v of plan.volumes) await ensureVolume(v.name, { ...labels, [LABEL.state]: v.agent });
  return plan.volumes.map((v) => ({ Type: 'volume', Source: v.name, Target: v.target }));
}

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
