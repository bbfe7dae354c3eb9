import type { AgentSpec } from '../agents/registry.js';
import { readConfig } from '../config/config.js';
import { type ContainerInfo, inspectContainer, listContainers } from '../engine/containers.js';
import type { Worktree } from '../git/worktree.js';
import { startSandbox } from '../network/proxy.js';
import { SbxError } from '../shared/errors.js';
import { LABEL } from '../shared/labels.js';
import type { CredentialsMode } from '../shared/parse.js';
import { bindOf, type Limits, type PortMapping, portKey, type VolumeMount } from '../shared/parse.js';
import type { ImageReporter } from '../templates/build.js';
import { DOCKER_SOCKET_WARNING, sandboxName } from './identity.js';
import { agentKeysWarning } from './secrets.js';
import type { SecurityRequest } from './security.js';

export interface SandboxRequest {
  workspace: string;
  agent: AgentSpec;
  /** --template as typed; undefined means the configured default, else the agent's own. */
  template: string | undefined;
  volumes: VolumeMount[];
  /** -p as typed; none means the configured default ports. */
  ports: PortMapping[];
  /** Limits given on the command line; the rest come from the config, then the defaults. */
  limits: Partial<Limits>;
  /** --name: a named sandbox on the workspace instead of its default one. */
  name: string | undefined;
  /** --credentials; undefined means the configured default, else sandbox. */
  credentials: CredentialsMode | undefined;
  /** Network policy, hardening and the Docker socket. */
  security: SecurityRequest;
  /** --sync / --no-sync: copy the workspace into the sandbox instead of mounting it; undefined: when the engine cannot see it. */
  sync?: boolean | undefined;
  /** A branch sandbox (--branch): the worktree that is its workspace. */
  worktree?: Worktree | undefined;
  version: string;
  reporter: ImageReporter;
  /** Told once when a new sandbox is created (not on reattach). */
  onCreated?: (sandbox: Sandbox) => void;
}

export interface Sandbox {
  id: string;
  name: string;
  workspace: string;
  agent: string;
  image: string;
  uid: number;
  gid: number;
  created: boolean;
  /** Where the agents' state lives: sandbox, host or none. */
  credentials: CredentialsMode;
  /** The workspace is a synced copy in this volume (the engine cannot see the host's files). */
  syncVolume?: string | undefined;
  /** The secrets bound to it: their variables hold placeholders, the proxy injects the values. */
  secrets: string[];
  warnings: string[];
}

/**
 * Finds the workspace's sandbox by its name and labels, or creates it, and makes sure it runs.
 * Two concurrent calls end in one container: the engine refuses the second create (name taken)
 * and that caller adopts the first one's container.
 */
export async function ensureSandbox(req: SandboxRequest): Promise<Sandbox> {
  const name = req.name ?? sandboxName(req.workspace);
  const existing =
    (await inspectContainer(name)) ?? (req.name ? undefined : await renamedDefault(req.workspace));
  if (existing) return reattach(existing, req);

  // Creating loads templates, git, the network and more: only when there is nothing to reattach to.
  const { createSandbox } = await import('./create.js');
  return createSandbox(req, name, reattach);
}

/** The workspace's default sandbox when it was renamed behind sbx's back (docker rename): found by label. */
async function renamedDefault(workspace: string): Promise<ContainerInfo | undefined> {
  const found = (await listContainers([`${LABEL.managed}=true`, `${LABEL.workspace}=${workspace}`])).find(
    (c) => c.Labels?.[LABEL.named] !== 'true',
  );
  return found ? inspectContainer(found.Id) : undefined;
}

export async function reattach(info: ContainerInfo, req: SandboxRequest): Promise<Sandbox> {
  const labels = info.Config.Labels ?? {};
  const name = info.Name.replace(/^\//, '');
  if (labels[LABEL.managed] !== 'true') {
    throw new SbxError('conflict', `A container named ${name} exists, and it is not an sbx sandbox.`, {
      hint: req.name
        ? 'Choose another --name.'
        : `Rename or remove that container (docker rename ${name} other-name), then run sbx again.`,
    });
  }
  if (labels[LABEL.workspace] !== req.workspace) {
    throw new SbxError(
      'conflict',
      `The sandbox ${name} belongs to the workspace ${labels[LABEL.workspace]}, not ${req.workspace}.`,
      { hint: req.name ? 'Choose another --name for this workspace.' : 'Run sbx in that workspace.' },
    );
  }
  const agent = labels[LABEL.agent] ?? '?';
  const installed = (labels[LABEL.agents] ?? '').split(',');
  if (req.agent.name !== agent && req.agent.name !== 'shell' && !installed.includes(req.agent.name)) {
    throw new SbxError(
      'conflict',
      `The sandbox ${name} of ${req.workspace} was made for ${agent}, and ${req.agent.name} is not installed in its image (${info.Config.Image}).`,
      {
        hint: `Run \`sbx run ${agent}\` here, or remove the sandbox with \`sbx rm -f ${name}\` (your workspace files stay) and run \`sbx run ${req.agent.name}\` again.`,
      },
    );
  }
  const binds = new Set(info.HostConfig.Binds ?? []);
  const missing = req.volumes.map(bindOf).filter((b) => !binds.has(b));
  if (missing.length > 0) {
    throw new SbxError(
      'conflict',
      `The sandbox ${name} already exists without the volume${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; volumes are set when a sandbox is created.`,
      {
        hint: `Remove the sandbox (sbx rm -f ${name}; your workspace files stay) and run again with the volumes, or run without -v.`,
      },
    );
  }
  const mode = labels[LABEL.credentials] ?? 'none';
  if (req.credentials !== undefined && req.credentials !== mode) {
    throw new SbxError(
      'conflict',
      `The sandbox ${name} was created with --credentials ${mode}; the credentials mode is set when a sandbox is created.`,
      {
        hint: `Run without --credentials, or remove it (sbx rm -f ${name}; workspace files and agent logins stay) and run again with --credentials ${req.credentials}.`,
      },
    );
  }
  const published = new Set([
    ...Object.keys(info.HostConfig.PortBindings ?? {}),
    ...(JSON.parse(labels[LABEL.ports] ?? '[]') as PortMapping[]).map(portKey),
  ]);
  const unpublished = req.ports.filter((p) => !published.has(portKey(p)));
  if (unpublished.length > 0) {
    throw new SbxError(
      'conflict',
      `The sandbox ${name} already exists without the port${unpublished.length > 1 ? 's' : ''} ${unpublished.map(portKey).join(', ')}; ports are published when a sandbox is created.`,
      {
        hint: `See its ports with \`sbx ports ${name}\`; to change them, remove it (sbx rm -f ${name}; your workspace files stay) and run again with -p.`,
      },
    );
  }
  const warnings: string[] = [];
  if (labels[LABEL.dockerSocket] === 'true') warnings.push(DOCKER_SOCKET_WARNING);
  const secrets = labels[LABEL.secrets]?.split(',').filter(Boolean) ?? [];
  warnings.push(...agentKeysWarning(req.agent, await readConfig(), process.env, secrets));
  const security = req.security;
  if (
    security.policyMode ||
    security.allowHosts.length ||
    security.blockHosts.length ||
    security.noSudo ||
    security.mountDockerSocket
  )
    warnings.push(
      `the sandbox ${name} exists, so its network policy and hardening stay as created; change hosts live with \`sbx network allow|block ${name} HOST\`.`,
    );
  const limits = Object.keys(req.limits);
  if (limits.length > 0) {
    warnings.push(
      `the sandbox ${name} exists, so ${limits.map((l) => `--${l === 'pidsLimit' ? 'pids-limit' : l}`).join(', ')} did not change it; limits apply when a sandbox is created (see them with \`sbx inspect ${name}\`).`,
    );
  }
  if (req.template !== undefined && req.template !== labels[LABEL.template]) {
    warnings.push(
      `the sandbox ${name} was created from the template ${labels[LABEL.template]}; --template ${req.template} applies only when a sandbox is created.`,
    );
  }
  if (req.sync !== undefined && req.sync !== Boolean(labels[LABEL.sync])) {
    warnings.push(
      `the sandbox ${name} ${labels[LABEL.sync] ? 'has a synced copy of' : 'mounts'} the workspace; --${req.sync ? '' : 'no-'}sync applies only when a sandbox is created.`,
    );
  }
  if (!info.State.Running) await startSandbox(info.Id, labels[LABEL.network], secrets);
  return {
    id: info.Id,
    name,
    workspace: req.workspace,
    agent,
    image: info.Config.Image,
    uid: Number(labels[LABEL.uid] ?? 1000),
    gid: Number(labels[LABEL.gid] ?? 1000),
    created: false,
    credentials: mode as CredentialsMode,
    syncVolume: labels[LABEL.sync],
    secrets,
    warnings,
  };
}
