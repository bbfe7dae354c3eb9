import { statSync } from 'node:fs';
import { currentEndpoint, isLocalEndpoint } from '../engine/connection.js';
import type { SecretBinding, SecretPolicy } from '../network/egress-secrets.js';
import type { Policy } from '../network/policy.js';
import { hostAddresses, sandboxEgress } from '../network/proxy.js';
import {
  DEFAULT_DENY_WRITE,
  effectivePolicy,
  type Settings,
  WORKSPACE_SETTINGS,
  workspaceSettings,
} from '../network/settings.js';
import { usageError } from '../shared/errors.js';
import { LABEL } from '../shared/labels.js';
import type { PolicyMode, PortMapping, VolumeMount } from '../shared/parse.js';
import { fileGuards } from './guards.js';
import { DOCKER_SOCKET_WARNING } from './identity.js';
import { unterminatedRuleWarnings, unusedSecretWarnings } from './secrets.js';
import { type Addition, portBindings } from './spec.js';

/** Capabilities a sandbox does without: nothing an agent's apt, npm, pip, git or build needs. */
export const DROPPED_CAPABILITIES = ['AUDIT_WRITE', 'MKNOD', 'NET_RAW', 'SETFCAP', 'SYS_CHROOT'];

export interface SecurityRequest {
  /** policy: on its own network behind the filtering proxy; none: no network at all. */
  network: 'policy' | 'none';
  policyMode: PolicyMode | undefined;
  allowHosts: string[];
  blockHosts: string[];
  /** --allow-request rules (METHOD HOST/PATH), applied on the hosts the proxy terminates. */
  allowRequests?: string[] | undefined;
  noSudo: boolean;
  mountDockerSocket: boolean;
}

/**
 * What the boundary adds to a new sandbox: its network (an internal one whose only way out is the
 * proxy, with the policy written before the sandbox starts: `ready`, which the caller awaits after
 * creating the container and before starting it) or none, published ports through a
 * forwarder, file guards, dropped capabilities, no-new-privileges with --no-sudo, and the Docker
 * socket only when asked for.
 */
export async function securityAddition(options: {
  name: string;
  workspace: string;
  agentHosts: string[];
  request: SecurityRequest;
  configMode: PolicyMode | undefined;
  ports: PortMapping[];
  volumes: VolumeMount[];
  labels: Record<string, string>;
  /** Other folders of the user's mounted (a branch sandbox's repository git folder): guarded too. */
  mountedRoots: string[];
  /** The workspace is synced into a volume, not mounted. */
  synced: boolean;
  /** The sandbox has a git folder of its own (private history): the host's .git is not guarded in place. */
  privateGit?: boolean;
  /** Names that resolve inside the sandbox itself (a dev container's compose services): not for the proxy. */
  localHosts?: string[];
  /** The seccomp profile (its JSON, or a file for Podman): no privileged modes, plus the inner guard's namespaces when asked; none: the engine's default. */
  seccomp?: string | undefined;
  /** Secrets bound to the sandbox (values resolved), for its policy and its placeholders. */
  secrets?: { policy: SecretPolicy; env: string[]; bindings: SecretBinding[] } | undefined;
}): Promise<{ addition: Addition; warnings: string[]; network: string; ready: Promise<void> }> {
  const { request, workspace } = options;
  // Checked before anything is made: bad input changes nothing.
  if (request.mountDockerSocket && !isLocalEndpoint(currentEndpoint()))
    throw usageError(
      `--mount-docker-socket needs an engine reached through a socket on this machine; ${currentEndpoint().url} is reached over the network, and its socket's path on that machine is not known to sbx.`,
      "Mount it yourself with -v /var/run/docker.sock:/var/run/docker.sock (a path on the engine's machine), or drop the flag.",
    );
  const settings = workspaceSettings(workspace);
  // A synced workspace is a copy in a volume: what guards would bind does not exist on the engine's
  // machine. Its promises are kept by the sync instead (see PROTECTED and syncExcludes).
  const guards = options.synced
    ? { binds: [], mounts: [], readOnly: [], hidden: [] }
    : fileGuards(
        workspace,
        [...DEFAULT_DENY_WRITE, ...settings.flatMap((s) => s.filesystem?.denyWrite ?? [])].filter(
          (p) => !(options.privateGit && /^\.?\/?\.git(\/|$)/.test(p)),
        ),
        settings.flatMap((s) => s.filesystem?.denyRead ?? []),
        WORKSPACE_SETTINGS,
        options.mountedRoots,
      );
  const warnings: string[] = [];
  const addition: Required<Pick<Addition, 'env' | 'binds' | 'mounts' | 'labels' | 'host'>> & Addition = {
    env: [],
    binds: guards.binds,
    mounts: guards.mounts,
    labels: {},
    host: {
      CapDrop: DROPPED_CAPABILITIES,
      ...(request.noSudo || options.seccomp
        ? {
            SecurityOpt: [
              ...(request.noSudo ? ['no-new-privileges'] : []),
              ...(options.seccomp ? [`seccomp=${options.seccomp}`] : []),
            ],
          }
        : {}),
    },
  };
  if (request.noSudo) addition.labels[LABEL.noSudo] = 'true';

  let network = 'none';
  let ready = Promise.resolve();
  if (request.network === 'none') {
    if (options.ports.length > 0)
      throw usageError(
        '--network none and -p do not go together: a sandbox without a network has no ports.',
        'Drop one of them.',
      );
    addition.network = 'none';
  } else {
    if (options.ports.some((p) => p.protocol === 'udp'))
      throw usageError(
        'UDP ports cannot be published under a network policy (only TCP is forwarded).',
        'Publish TCP ports only.',
      );
    const policy = await sandboxPolicy(request, options.configMode, options.agentHosts, settings);
    const secrets = options.secrets;
    warnings.push(...unterminatedRuleWarnings(policy.requestRules ?? [], secrets?.bindings ?? []));
    if (secrets) {
      warnings.push(...unusedSecretWarnings(secrets.bindings, policy));
      addition.env.push(...secrets.env);
      addition.labels[LABEL.secrets] = secrets.bindings
        .flatMap((b) => [b.name, ...(b.aliases ?? [])])
        .join(',');
    }
    const egress = await sandboxEgress(
      options.name,
      { ...policy, ...(secrets?.policy ?? {}) },
      options.ports.length > 0 ? portBindings(options.ports) : undefined,
      options.labels,
    );
    network = egress.network;
    ready = egress.ready;
    addition.network = network;
    addition.aliases = egress.aliases;
    addition.address = egress.address;
    addition.host.ExtraHosts = egress.extraHosts;
    const local = options.localHosts ?? [];
    addition.env.push(
      ...egress.env.map((e) => (local.length > 0 && /^no_proxy=/i.test(e) ? `${e},${local.join(',')}` : e)),
    );
  }
  addition.labels[LABEL.network] = network;

  const socketVolume = options.volumes.find((v) => isSocket(v.host));
  if (request.mountDockerSocket || socketVolume) {
    const endpoint = currentEndpoint();
    const socket = endpoint.options.socketPath ?? '/var/run/docker.sock';
    if (request.mountDockerSocket) addition.binds.push(`${socket}:/var/run/docker.sock`);
    const gid = isSocket(socket) ? statSync(socket).gid : undefined;
    if (gid !== undefined) addition.host.GroupAdd = [String(gid)];
    addition.labels[LABEL.dockerSocket] = 'true';
    warnings.push(DOCKER_SOCKET_WARNING);
  }
  return { addition, warnings, network, ready };
}

/** The egress policy a sandbox (and its dev container's build) gets: flags, config, the agent's hosts, settings. */
export async function sandboxPolicy(
  request: SecurityRequest,
  configMode: PolicyMode | undefined,
  agentHosts: string[],
  settings: Settings[],
): Promise<Policy> {
  return effectivePolicy({
    mode: request.policyMode ?? configMode ?? 'allow',
    allowFlags: request.allowHosts,
    blockFlags: request.blockHosts,
    requestRules: request.allowRequests ?? [],
    agentHosts,
    settings,
    hostAddresses: await hostAddresses(),
  });
}

export function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}
