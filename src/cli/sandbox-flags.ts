import { Flags } from '@oclif/core';
import { checkPatterns, checkRequestRules } from '../network/settings.js';
import type { SandboxRequest } from '../sandbox/plan.js';
import { INNER_SANDBOX_COST } from '../sandbox/runtime.js';
import {
  CREDENTIAL_MODES,
  type Limits,
  type PolicyMode,
  parseCpus,
  parseCredentials,
  parseIdleStop,
  parseMemory,
  parsePidsLimit,
  parsePort,
  parseRuntime,
  parseSandboxName,
  parseVolume,
} from '../shared/parse.js';

const repeatable = { multiple: true, multipleNonGreedy: true } as const;

/** Flags that shape a new sandbox: `run` and `create`. */
export const createFlags = {
  branch: Flags.string({
    description:
      'A branch sandbox: its own git worktree on branch NAME (made from --from, default HEAD, if new) beside the repository, in <repo>.worktrees/NAME. Without NAME: a fresh sbx/AGENT-N.',
  }),
  devcontainer: Flags.string({
    description:
      'The dev container a new sandbox is built from, when the workspace has several: .devcontainer/NAME/devcontainer.json (default: .devcontainer/devcontainer.json, else .devcontainer.json; config devcontainer=never turns them off).',
  }),
  docker: Flags.boolean({
    description:
      "Give a new sandbox a Docker engine of its own (rootless Podman serving Docker's API, with the docker CLI and compose), which cannot reach the host's engine (see docs/docker-inside.md). Default: config dockers.AGENT, else docker, else off.",
    allowNo: true,
  }),
  from: Flags.string({
    description: 'With --branch: the ref a new branch starts from (default: HEAD).',
    dependsOn: ['branch'],
  }),
  'allow-host': Flags.string({
    description:
      'Allow a host through the egress proxy: api.example.com, *.example.com (subdomains), optionally :PORT. Repeatable.',
    ...repeatable,
  }),
  'allow-request': Flags.string({
    description:
      'On a host sbx injects a secret into (whose requests it sees): let through only matching requests, METHOD HOST/PATH ("GET api.github.com/repos/my-org/**"). Repeatable.',
    ...repeatable,
  }),
  'block-host': Flags.string({
    description: 'Refuse a host (same patterns); beats any allow. Repeatable.',
    ...repeatable,
  }),
  'inner-sandbox': Flags.boolean({
    description: `Let the agent's own sandbox work inside this one (a new sandbox): Claude Code's sandbox turned on for its Bash tool, and srt (Anthropic's sandbox runtime) for any command. ${INNER_SANDBOX_COST} Default: config innerSandboxes.AGENT, else innerSandbox, else off. See docs/inner-sandbox.md.`,
    allowNo: true,
  }),
  'mount-docker-socket': Flags.boolean({
    description:
      "Give the sandbox the engine's Docker socket. DANGEROUS: the agent can take root on the host.",
  }),
  network: Flags.string({
    description:
      'none: no network at all (default: the sandbox network, whose only way out is the egress proxy).',
    options: ['none'],
  }),
  'network-policy': Flags.string({
    description:
      "allow: everything but internal addresses and blocked hosts; deny: only allowed hosts and the agent's own (API, login, package registries, GitHub). Default: config networkPolicy, else allow.",
    options: ['allow', 'deny'],
  }),
  'no-sudo': Flags.boolean({
    description: 'No sudo in the sandbox (and no-new-privileges for every process).',
  }),
  credentials: Flags.string({
    description:
      'Where a new sandbox keeps agent logins: sandbox (one volume per agent, shared by its sandboxes, kept after rm), host (your own, mounted: the sandbox can change them) or none (nothing kept). Default: config credentials, else sandbox.',
    options: [...CREDENTIAL_MODES],
  }),
  cpus: Flags.string({ description: 'CPU limit of a new sandbox, e.g. 2 or 1.5 (default: none; 0 = none).' }),
  'idle-stop': Flags.string({
    description:
      'Stop a new sandbox by itself after this long idle (no session attached, no process using CPU), e.g. 2h; off for never. Default: config idleStop, else off. Reattaching starts it again.',
  }),
  memory: Flags.string({
    description: "Memory limit of a new sandbox, e.g. 4g (default: 80% of the engine's memory; 0 = none).",
  }),
  name: Flags.string({
    description: "Name a second sandbox on this workspace (default: the workspace's own sandbox).",
  }),
  'pids-limit': Flags.string({ description: 'Process limit of a new sandbox (default: 4096; 0 = none).' }),
  publish: Flags.string({
    char: 'p',
    description:
      'Publish a port: [HOST_IP:]HOST:CONTAINER[/udp]; HOST 0 picks a free port; HOST_IP defaults to 127.0.0.1. Repeatable.',
    ...repeatable,
  }),
  runtime: Flags.string({
    description:
      "OCI runtime of a new sandbox, as the engine registered it: runsc runs it under gVisor, an application kernel between the agent and the host's kernel (see docs/runtimes.md). Default: SBX_RUNTIME, else config runtime, else the engine's default (runc).",
  }),
  sync: Flags.boolean({
    description:
      'Copy the workspace into the new sandbox (a volume at the same path) and back after each run, instead of mounting it. Default: only when the engine cannot see the workspace (a remote engine). --no-sync mounts it.',
    allowNo: true,
  }),
  template: Flags.string({
    char: 't',
    description: 'Template for a new sandbox: a name, a folder with a Dockerfile, or an image reference.',
  }),
  volume: Flags.string({
    char: 'v',
    description: 'Mount a host path: HOST:CONTAINER[:ro]. Repeatable; applies when the sandbox is created.',
    ...repeatable,
  }),
};

/** Flags that put variables into what runs in a sandbox: `run` and `exec`. */
export const envFlags = {
  env: Flags.string({
    char: 'e',
    description:
      "Set a variable (KEY=VALUE), or pass the host's (KEY). Repeatable. Given to the process only, not stored in the container.",
    ...repeatable,
  }),
  'env-file': Flags.string({
    description: 'Read variables from a file of KEY=VALUE lines. Repeatable.',
    ...repeatable,
  }),
};

type CreateFlagValues = {
  [K in keyof typeof createFlags]?:
    | (K extends 'publish' | 'volume' | 'allow-host' | 'allow-request' | 'block-host'
        ? string[]
        : K extends 'no-sudo' | 'mount-docker-socket' | 'sync' | 'inner-sandbox' | 'docker'
          ? boolean
          : string)
    | undefined;
};

/** The parts of a SandboxRequest the command line decides, checked before anything is created. */
export function sandboxOptions(
  flags: CreateFlagValues,
): Pick<
  SandboxRequest,
  | 'template'
  | 'volumes'
  | 'ports'
  | 'limits'
  | 'name'
  | 'credentials'
  | 'security'
  | 'sync'
  | 'idleStop'
  | 'runtime'
  | 'innerSandbox'
  | 'devcontainer'
  | 'docker'
> {
  const limits: Partial<Limits> = {};
  if (flags.cpus !== undefined) limits.cpus = parseCpus(flags.cpus);
  if (flags.memory !== undefined) limits.memory = parseMemory(flags.memory);
  if (flags['pids-limit'] !== undefined) limits.pidsLimit = parsePidsLimit(flags['pids-limit']);
  return {
    template: flags.template,
    devcontainer: flags.devcontainer,
    volumes: (flags.volume ?? []).map((v) => parseVolume(v)),
    ports: (flags.publish ?? []).map((p) => parsePort(p)),
    limits,
    name: flags.name === undefined ? undefined : parseSandboxName(flags.name),
    credentials: flags.credentials === undefined ? undefined : parseCredentials(flags.credentials),
    sync: flags.sync,
    docker: flags.docker,
    idleStop: flags['idle-stop'] === undefined ? undefined : parseIdleStop(flags['idle-stop'], '--idle-stop'),
    runtime: flags.runtime === undefined ? undefined : parseRuntime(flags.runtime),
    innerSandbox: flags['inner-sandbox'],
    security: {
      network: flags.network === 'none' ? 'none' : 'policy',
      policyMode: flags['network-policy'] as PolicyMode | undefined,
      allowHosts: checkPatterns(flags['allow-host'] ?? [], 'allow', '--allow-host'),
      blockHosts: checkPatterns(flags['block-host'] ?? [], 'deny', '--block-host'),
      allowRequests: checkRequestRules(flags['allow-request'] ?? []),
      noSudo: Boolean(flags['no-sudo']),
      mountDockerSocket: Boolean(flags['mount-docker-socket']),
    },
  };
}

/** `--branch` may come without a value (a fresh branch name): give oclif an empty one. */
export function optionalBranch(argv: string[]): string[] {
  return argv.map((arg, i) =>
    arg === '--branch' && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('-')) ? '--branch=' : arg,
  );
}
