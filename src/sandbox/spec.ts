import type Docker from 'dockerode';
import type { AgentSpec } from '../agents/registry.js';
import type { GitIdentity } from '../git/identity.js';
import { usageError } from '../shared/errors.js';
import { LABEL } from '../shared/labels.js';
import {
  bindOf,
  DEFAULT_LIMITS,
  type EnvVar,
  type Limits,
  type PortMapping,
  parseMemory,
  portKey,
  type VolumeMount,
} from '../shared/parse.js';
import { idleStopCommand } from './idle.js';

/** A part of the container's configuration contributed by one concern (credentials, security...). */
export interface Addition {
  env?: string[];
  binds?: string[];
  mounts?: Docker.MountSettings[];
  labels?: Record<string, string>;
  host?: Docker.HostConfig;
  /** The network the sandbox joins (its only one), its names and its address there. */
  network?: string;
  aliases?: string[];
  address?: string | undefined;
}

export interface SandboxPlan {
  name: string;
  workspace: string;
  agent: AgentSpec;
  image: string;
  templateRef: string;
  uid: number;
  gid: number;
  /** The host user who makes it (see LABEL.user). */
  user?: string;
  git: GitIdentity;
  volumes: VolumeMount[];
  ports: PortMapping[];
  limits: Limits;
  /** A synced sandbox: the volume mounted at the workspace path instead of the workspace itself. */
  syncVolume?: string | undefined;
  /** Asked for with --name: a second sandbox on the workspace, not its default one. */
  named: boolean;
  /** Seconds without use after which the sandbox stops itself; 0 for never. */
  idleStop?: number | undefined;
  /** What the credentials mode, the network policy, file guards and hardening add (see Addition). */
  additions: Addition[];
  labels: Record<string, string>;
  version: string;
}

/**
 * What to ask the engine for. Published ports are not the sandbox's own (its network has no way in):
 * they are recorded in a label and published by its port forwarder. Only non-secret facts go into the container's stored configuration;
 * user variables and API keys are given to each exec instead (see execEnv).
 */
export function createOptions(plan: SandboxPlan): Docker.ContainerCreateOptions {
  const env = [`SBX_UID=${plan.uid}`, `SBX_GID=${plan.gid}`];
  if (plan.git.name) env.push(`SBX_GIT_NAME=${plan.git.name}`);
  if (plan.git.email) env.push(`SBX_GIT_EMAIL=${plan.git.email}`);
  env.push(...plan.additions.flatMap((a) => a.env ?? []));
  const joined = plan.additions.find((a) => a.network);
  return {
    name: plan.name,
    Image: plan.image,
    Env: env,
    WorkingDir: plan.workspace,
    ...(plan.idleStop ? { Cmd: idleStopCommand(plan.idleStop) } : {}),
    Labels: {
      ...plan.labels,
      ...Object.assign({}, ...plan.additions.map((a) => a.labels ?? {})),
      [LABEL.managed]: 'true',
      [LABEL.workspace]: plan.workspace,
      [LABEL.agent]: plan.agent.name,
      [LABEL.template]: plan.templateRef,
      [LABEL.version]: plan.version,
      [LABEL.uid]: String(plan.uid),
      [LABEL.gid]: String(plan.gid),
      ...(plan.user ? { [LABEL.user]: plan.user } : {}),
      ...(plan.ports.length > 0 ? { [LABEL.ports]: JSON.stringify(plan.ports) } : {}),
      ...(plan.named ? { [LABEL.named]: 'true' } : {}),
      ...(plan.syncVolume ? { [LABEL.sync]: plan.syncVolume } : {}),
      ...(plan.idleStop ? { [LABEL.idleStop]: String(plan.idleStop) } : {}),
    },
    HostConfig: {
      ...Object.assign({}, ...plan.additions.map((a) => a.host ?? {})),
      Binds: [
        ...(plan.syncVolume ? [] : [`${plan.workspace}:${plan.workspace}`]),
        ...plan.additions.flatMap((a) => a.binds ?? []),
        ...plan.volumes.map(bindOf),
      ],
      Mounts: [
        ...(plan.syncVolume
          ? [{ Type: 'volume' as const, Source: plan.syncVolume, Target: plan.workspace }]
          : []),
        ...plan.additions.flatMap((a) => a.mounts ?? []),
      ],
      ...(joined?.network ? { NetworkMode: joined.network } : {}),
      Init: false,
      ...(plan.limits.cpus ? { NanoCpus: Math.round(plan.limits.cpus * 1e9) } : {}),
      ...(plan.limits.memory ? { Memory: plan.limits.memory } : {}),
      ...(plan.limits.pidsLimit ? { PidsLimit: plan.limits.pidsLimit } : {}),
    },
    ...(joined?.network && joined.network !== 'none' && joined.aliases
      ? {
          NetworkingConfig: {
            EndpointsConfig: {
              [joined.network]: {
                Aliases: joined.aliases,
                ...(joined.address ? { IPAMConfig: { IPv4Address: joined.address } } : {}),
              },
            },
          },
        }
      : {}),
  };
}

/** The engine's PortBindings for -p mappings; host port 0 becomes "" (the engine picks one). */
export function portBindings(
  ports: PortMapping[],
): Record<string, Array<{ HostIp: string; HostPort: string }>> {
  const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
  for (const p of ports) {
    const key = portKey(p);
    bindings[key] = [
      ...(bindings[key] ?? []),
      { HostIp: p.hostIp, HostPort: p.hostPort ? String(p.hostPort) : '' },
    ];
  }
  return bindings;
}

/**
 * The limits of a new sandbox: the flags, else the config, else the defaults (no CPU limit, 4096
 * processes, 80% of the engine's memory so a runaway build cannot take the whole machine).
 */
export function effectiveLimits(
  flags: Partial<Limits>,
  config: { cpus?: number; memory?: string; pidsLimit?: number },
  engine: { cpus: number; memTotal: number },
): Limits {
  const cpus = flags.cpus ?? config.cpus ?? DEFAULT_LIMITS.cpus;
  if (engine.cpus > 0 && cpus > engine.cpus) {
    throw usageError(
      `The CPU limit ${cpus} is more than the engine's ${engine.cpus} CPUs.`,
      `Give at most --cpus ${engine.cpus}, or 0 for no limit.`,
    );
  }
  const memory =
    flags.memory ??
    (config.memory !== undefined ? parseMemory(config.memory) : undefined) ??
    Math.floor((engine.memTotal * DEFAULT_LIMITS.memoryShare) / 2 ** 20) * 2 ** 20;
  return { cpus, memory, pidsLimit: flags.pidsLimit ?? config.pidsLimit ?? DEFAULT_LIMITS.pidsLimit };
}

export interface ExecUser {
  user: string;
  home: string;
  name: string;
}

/**
 * The UID/GID inside a sandbox that is the workspace's owner on the host. A rootful engine shares
 * the host's IDs. A rootless engine lives in its user's namespace: rootless Podman maps that user to
 * the same UID inside (keep-id, see the engine layer), rootless Docker only to root, so there the
 * agent is root inside, which outside is the user and nothing more. (A workspace of another user
 * than the engine's has no ID inside a rootless engine; sbx doctor says so.)
 */
export function sandboxOwner(
  owner: { uid: number; gid: number },
  userMapping: 'same' | 'keep-id' | 'root',
  engineUser = process.getuid?.(),
): { uid: number; gid: number } {
  if (userMapping === 'root' && owner.uid === engineUser) return { uid: 0, gid: 0 };
  return { uid: owner.uid, gid: owner.gid };
}

/** The workspace owner's identity inside: root stays root, anyone else is the agent user. */
export function execUser(uid: number, gid: number): ExecUser {
  return uid === 0
    ? { user: '0:0', home: '/root', name: 'root' }
    : { user: `${uid}:${gid}`, home: '/home/agent', name: 'agent' };
}

/**
 * The environment of one exec: identity, terminal, the agent's own settings, its API keys from the
 * host (this agent's only, except those bound as secrets: the proxy injects them), then the user's -e/--env-file (which win). Not the host's proxy settings:
 * a sandbox's way out is sbx's egress proxy (its own variables), which chains to the host's.
 * Without a user (exec -u) the engine sets HOME from that user's account.
 */
export function execEnv(options: {
  agent: AgentSpec;
  user: ExecUser | undefined;
  term: string | undefined;
  hostEnv: NodeJS.ProcessEnv;
  vars: EnvVar[];
  session?: 'attach' | 'detach' | undefined;
  /** Secrets bound to the sandbox: their variables keep the placeholders, never the host's values. */
  bound?: string[] | undefined;
}): string[] {
  const env: Record<string, string> = {
    ...(options.user ? { HOME: options.user.home, USER: options.user.name } : {}),
    SBX_AGENT: options.agent.name,
    ...(options.session ? { SBX_SESSION: options.session } : {}),
    ...(options.term ? { TERM: options.term } : {}),
    ...options.agent.env,
  };
  for (const name of options.agent.apiKeyEnv) {
    if (options.bound?.includes(name)) continue;
    const value = options.hostEnv[name];
    if (value) env[name] = value;
  }
  for (const v of options.vars) env[v.name] = v.value;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
