import type Docker from 'dockerode';
import type { AgentSpec } from '../agents/registry.js';
import type { GitIdentity } from '../git/identity.js';
import { LABEL } from './identity.js';
import { bindOf, type EnvVar, type VolumeMount } from './options.js';

export interface SandboxPlan {
  name: string;
  workspace: string;
  agent: AgentSpec;
  image: string;
  templateRef: string;
  uid: number;
  gid: number;
  git: GitIdentity;
  volumes: VolumeMount[];
  labels: Record<string, string>;
  version: string;
}

/**
 * What to ask the engine for. Only non-secret facts go into the container's stored configuration;
 * user variables and API keys are given to each exec instead (see execEnv).
 */
export function createOptions(plan: SandboxPlan): Docker.ContainerCreateOptions {
  const env = [`SBX_UID=${plan.uid}`, `SBX_GID=${plan.gid}`];
  if (plan.git.name) env.push(`SBX_GIT_NAME=${plan.git.name}`);
  if (plan.git.email) env.push(`SBX_GIT_EMAIL=${plan.git.email}`);
  return {
    name: plan.name,
    Image: plan.image,
    Env: env,
    WorkingDir: plan.workspace,
    Labels: {
      ...plan.labels,
      [LABEL.managed]: 'true',
      [LABEL.workspace]: plan.workspace,
      [LABEL.agent]: plan.agent.name,
      [LABEL.template]: plan.templateRef,
      [LABEL.version]: plan.version,
      [LABEL.uid]: String(plan.uid),
      [LABEL.gid]: String(plan.gid),
    },
    HostConfig: {
      Binds: [`${plan.workspace}:${plan.workspace}`, ...plan.volumes.map(bindOf)],
      Init: false,
    },
  };
}

export interface ExecUser {
  user: string;
  home: string;
  name: string;
}

/** The workspace owner's identity inside: root stays root, anyone else is the agent user. */
export function execUser(uid: number, gid: number): ExecUser {
  return uid === 0
    ? { user: '0:0', home: '/root', name: 'root' }
    : { user: `${uid}:${gid}`, home: '/home/agent', name: 'agent' };
}

/**
 * The environment of one exec: identity, terminal, the agent's own settings, its API keys from the
 * host (this agent's only), the host's proxy settings, then the user's -e/--env-file (which win).
 */
export function execEnv(options: {
  agent: AgentSpec;
  user: ExecUser;
  term: string | undefined;
  hostEnv: NodeJS.ProcessEnv;
  proxy: Record<string, string>;
  vars: EnvVar[];
}): string[] {
  const env: Record<string, string> = {
    HOME: options.user.home,
    USER: options.user.name,
    SBX_AGENT: options.agent.name,
    ...(options.term ? { TERM: options.term } : {}),
    ...options.agent.env,
    ...options.proxy,
  };
  for (const name of options.agent.apiKeyEnv) {
    const value = options.hostEnv[name];
    if (value) env[name] = value;
  }
  for (const v of options.vars) env[v.name] = v.value;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
