/**
 * The pure decisions of a sandbox's life: what a request asks for, and whether an existing container
 * can serve it (with which warnings). No engine calls here: lifecycle.ts and create.ts carry the
 * decisions out, and test/unit/plan.test.ts checks them.
 */
import type { Writable } from 'node:stream';
import type { AgentSpec } from '../agents/registry.js';
import type { ContainerInfo } from '../engine/containers.js';
import type { Worktree } from '../git/worktree.js';
import { SbxError } from '../shared/errors.js';
import { currentUser, LABEL, ownedBy, type SandboxRecord } from '../shared/labels.js';
import {
  bindOf,
  type CredentialsMode,
  type Limits,
  type PortMapping,
  portKey,
  type VolumeMount,
} from '../shared/parse.js';
import type { SyncReport } from '../sync/sync.js';
import type { ImageReporter } from '../templates/build.js';
import { DOCKER_SOCKET_WARNING } from './identity.js';
import type { SecurityRequest } from './security.js';

export interface SandboxRequest {
  workspace: string;
  agent: AgentSpec;
  /** --template as typed; undefined means the configured default, else the agent's own. */
  template: string | undefined;
  /** --devcontainer: which devcontainer.json to build from (undefined: the default one, if any). */
  devcontainer?: string | undefined;
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
  /** --docker / --no-docker: a Docker engine of its own inside; undefined means the configured default. */
  docker?: boolean | undefined;
  /** --idle-stop in seconds (0: never); undefined means the configured idleStop, else never. */
  idleStop?: number | undefined;
  /** --runtime: the OCI runtime (e.g. runsc); undefined means the configured one, else the engine's default. */
  runtime?: string | undefined;
  /** --inner-sandbox / --no-inner-sandbox; undefined means the configured choice, else no. */
  innerSandbox?: boolean | undefined;
  /** A branch sandbox (--branch): the worktree that is its workspace. */
  worktree?: Worktree | undefined;
  /** --allow-home-workspace: a home (or `/`, or a folder holding sbx's own) may be the workspace (see workspace-guard.ts). */
  allowHomeWorkspace?: boolean | undefined;
  version: string;
  reporter: ImageReporter;
  /** Progress of the first copy of the workspace into a synced sandbox. */
  syncReport?: SyncReport | undefined;
  /** Where the dev container's lifecycle commands (postCreateCommand...) write their output. */
  hookOutput?: Writable | undefined;
  /** Told once when a new sandbox is created (not on reattach). */
  onCreated?: (sandbox: Sandbox) => void;
  /**
   * Asks the user to approve workspace configuration files that are new or changed (shown as given);
   * unset where nobody can be asked (no terminal): such files are then refused (see sandbox/trust.ts).
   */
  approve?: ((shown: string) => Promise<boolean>) | undefined;
}

export interface Sandbox extends SandboxRecord {
  agent: string;
  image: string;
  created: boolean;
  /** Where the agents' state lives: sandbox, host or none. */
  credentials: CredentialsMode;
  /** The workspace is a synced copy in this volume (the engine cannot see the host's files). */
  syncVolume?: string | undefined;
  /** The secrets bound to it: their variables hold placeholders, the proxy injects the values. */
  secrets: string[];
  /** Built from this devcontainer.json. */
  devcontainer?: string | undefined;
  warnings: string[];
}

/** The request of the plain `sbx run AGENT [WORKSPACE]`: nothing asked beyond the defaults. */
export function plainRequest(workspace: string, agent: AgentSpec, version = ''): SandboxRequest {
  return {
    workspace,
    agent,
    template: undefined,
    volumes: [],
    ports: [],
    limits: {},
    name: undefined,
    credentials: undefined,
    security: {
      network: 'policy',
      policyMode: undefined,
      allowHosts: [],
      blockHosts: [],
      noSudo: false,
      mountDockerSocket: false,
    },
    version,
    reporter: { start() {}, event() {}, end() {} },
  };
}

/** A choice made when a sandbox is created (its seccomp profile, its inner engine): asked otherwise later, a conflict. */
function fixedAtCreation(
  name: string,
  flag: string,
  what: string,
  was: boolean,
  asked: boolean | undefined,
  why: string,
  goes = '',
): void {
  if (asked === undefined || asked === was) return;
  const given = `--${asked ? '' : 'no-'}${flag}`;
  throw new SbxError(
    'conflict',
    `The sandbox ${name} was created ${was ? 'with' : 'without'} ${what}; ${given} applies only when a sandbox is created${why ? ` ${why}` : ''}.`,
    {
      hint: `Run without ${given}, or remove it (sbx rm -f ${name}; your workspace files stay${goes}) and run again with ${given}.`,
    },
  );
}

/**
 * Whether an existing container can serve a request: a conflict (another owner, agent, volume,
 * credentials mode or port) is an error naming the way out; what the request asks that applies only
 * at creation (policy, limits, template, sync) is a warning. `start`: the container must be started.
 */
export function reattachPlan(
  info: ContainerInfo,
  req: SandboxRequest,
  user = currentUser(),
): { sandbox: Sandbox; start: boolean } {
  const labels = info.Config.Labels ?? {};
  const name = info.Name.replace(/^\//, '');
  if (labels[LABEL.managed] !== 'true') {
    throw new SbxError('conflict', `A container named ${name} exists, and it is not an sbx sandbox.`, {
      hint: req.name
        ? 'Choose another --name.'
        : `Rename or remove that container (docker rename ${name} other-name), then run sbx again.`,
    });
  }
  // Another user's sandbox mounts their login: only root (the engine's administrator) may use it.
  if (!ownedBy(labels, user) && user !== '0') {
    throw new SbxError(
      'conflict',
      `The sandbox ${name} of ${labels[LABEL.workspace]} belongs to another host user (UID ${labels[LABEL.user] ?? labels[LABEL.uid]}); sbx does not use another user's sandbox or its login.`,
      { hint: 'Make your own with --name NAME, or ask that user (or root) to remove theirs.' },
    );
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
  fixedAtCreation(
    name,
    'inner-sandbox',
    'the inner guard',
    labels[LABEL.innerSandbox] === 'true',
    req.innerSandbox,
    '(its seccomp profile is fixed then)',
  );
  const docker = labels[LABEL.docker] !== undefined;
  fixedAtCreation(
    name,
    'docker',
    'a Docker engine of its own',
    docker,
    req.docker,
    '',
    docker ? ", its inner engine's images and containers go" : '',
  );
  const warnings: string[] = [];
  if (labels[LABEL.dockerSocket] === 'true') warnings.push(DOCKER_SOCKET_WARNING);
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
  const runtime = info.HostConfig.Runtime ?? '';
  if (req.runtime !== undefined && req.runtime !== runtime)
    warnings.push(
      `the sandbox ${name} runs under the runtime ${runtime || "the engine's default"}; --runtime ${req.runtime} applies only when a sandbox is created.`,
    );
  if (req.idleStop !== undefined && String(req.idleStop) !== (labels[LABEL.idleStop] ?? '0'))
    warnings.push(
      `the sandbox ${name} exists, so --idle-stop did not change it; idle stop is set when a sandbox is created.`,
    );
  return {
    start: !info.State.Running,
    sandbox: {
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
      secrets: labels[LABEL.secrets]?.split(',').filter(Boolean) ?? [],
      warnings,
    },
  };
}

/** A template's image must have the agent installed (the shell is in every sbx image). */
export function checkAgentInImage(agent: AgentSpec, template: string, image: string, agents: string[]): void {
  if (agent.name === 'shell' || agents.includes(agent.name)) return;
  throw new SbxError(
    'conflict',
    `The template ${template} (${image}) does not have ${agent.name} installed${agents[0] ? `; it has: ${agents.join(', ')}` : ' (it was not built from an sbx template)'}.`,
    {
      hint: `Start the template FROM sbx/${agent.template} so the agent, its user and its launch stay sbx's.`,
    },
  );
}

/**
 * Whether a new sandbox gets a synced copy of the workspace instead of a mount: when the engine
 * cannot see it (or --sync asks); --no-sync there, or --branch with a copy, is refused.
 */
export function syncWorkspace(
  req: Pick<SandboxRequest, 'sync' | 'workspace' | 'worktree'>,
  engineSees: boolean,
  engineUrl: string,
): boolean {
  if (req.sync === false && !engineSees)
    throw new SbxError(
      'usage',
      `--no-sync asks to mount ${req.workspace}, and the engine at ${engineUrl} cannot see it (another machine).`,
      { hint: 'Drop --no-sync: the sandbox then works on a synced copy (see `sbx sync --help`).' },
    );
  const sync = req.sync === true || !engineSees;
  if (sync && req.worktree)
    throw new SbxError(
      'usage',
      `--branch needs an engine that sees the workspace, and ${engineUrl} does not (its sandboxes get a synced copy).`,
      {
        hint: 'Run the branch sandbox on a local engine (--host unix:///var/run/docker.sock), or sync a plain clone of the branch instead.',
      },
    );
  return sync;
}

/** What a user should know about a new sandbox before it starts. */
export function creationWarnings(o: {
  name: string;
  req: Pick<SandboxRequest, 'workspace' | 'volumes' | 'security'>;
  git: { name?: string | undefined; email?: string | undefined };
  ports: PortMapping[];
  /** The engine's address when it is another machine (its sandboxes get a synced copy). */
  remote: string | undefined;
  ownerUid: number;
  rootless: boolean;
  /** Made with the inner guard (--inner-sandbox). */
  innerSandbox?: boolean;
}): string[] {
  const warnings: string[] = [];
  const { git, req, remote } = o;
  if (!git.name || !git.email)
    warnings.push(
      `git has no ${git.name ? 'user.email' : git.email ? 'user.name' : 'user.name or user.email'} for ${req.workspace}, so commits made in the sandbox will lack it; set it with \`git config --global user.name "Your Name"\` and \`git config --global user.email you@example.com\`.`,
    );
  if (remote && req.volumes.length > 0)
    warnings.push(
      `the engine at ${remote} is another machine: -v mounts its paths (${req.volumes.map((v) => v.host).join(', ')}), not this host's.`,
    );
  if (remote && o.ports.length > 0)
    warnings.push(
      `the engine at ${remote} is another machine: -p ports are published on its 127.0.0.1, reach them with an SSH tunnel (ssh -L).`,
    );
  if (req.security.noSudo && o.ownerUid === 0)
    warnings.push(
      `the agent runs as root in ${o.name} (as the workspace's owner ${o.rootless ? 'on a rootless Docker engine, which maps only root inside to you' : 'is root'}), so --no-sudo takes nothing from it.`,
    );
  if (o.innerSandbox && o.ownerUid === 0)
    warnings.push(
      `the agent runs as root in ${o.name} (as the workspace's owner ${o.rootless ? 'on a rootless Docker engine' : 'is root'}), and bubblewrap cannot map root into its user namespace without CAP_SETFCAP, which sandboxes do without: the inner guard (Claude Code's sandbox, srt) works in a workspace of a non-root user.`,
    );
  return warnings;
}
