import { readFileSync } from 'node:fs';
import type Docker from 'dockerode';
import { currentEndpoint, isLocalEndpoint } from './connection.js';
import { api } from './http.js';

/**
 * What differs between the engines sbx speaks to, chosen once when the engine is known (see
 * engineInfo) instead of asked in every call, as testcontainers chooses its container client.
 */
export interface Flavour {
  name: 'Docker Engine' | 'Podman';
  /**
   * How the engine's user (outside) is seen inside a container: the same IDs (a rootful engine),
   * the same UID through keep-id (rootless Podman), or root (rootless Docker maps only root to its
   * user, so the workspace owner inside is root).
   */
  userMapping: 'same' | 'keep-id' | 'root';
  /** The container options this engine needs beyond what sbx asks every engine for. */
  adaptCreate(options: Docker.ContainerCreateOptions): Docker.ContainerCreateOptions;
  /** Creates an internal network on a subnet: no route out, and no DNS for outside names. */
  createInternalNetwork(name: string, labels: Record<string, string>, subnet: string): Promise<unknown>;
  /**
   * Creates a network for one sandbox's port forwarder alone: a bridge the engine publishes ports
   * on, cut off from every other network and container, so that no other container shares its
   * segment (where it could pass for the gateway the host's connections come from).
   */
  createPortsNetwork(name: string, labels: Record<string, string>, subnet: string): Promise<unknown>;
  /**
   * The engine may call a container running whose process died without a cleanup (Podman, after a
   * kill -9 of its conmon or a reboot that kept /run): "running" is to be checked by entering it.
   */
  runningMayBeStale: boolean;
  /**
   * The engine's GET /system/df leaves out what sbx reads (Podman 4.3: no labels, images named by
   * their tag alone): its disk usage is read from the image, container and volume lists instead.
   */
  dfFromLists: boolean;
  /**
   * The engine tears its network namespace down when a running container leaves a network while no
   * other container runs there (rootless Podman 4.3): that container must be restarted to get out.
   */
  netnsGoesWithLastNetwork: boolean;
  /**
   * The OCI runtime a created container will run under, as the engine resolved it, where the engine
   * may not do what HostConfig.Runtime asked (Podman 4.3's Docker-compatible API ignores it); else
   * undefined (Docker honours it or refuses the create).
   */
  resolvedRuntime(id: string): Promise<string | undefined>;
}

const docker: Flavour = {
  name: 'Docker Engine',
  userMapping: 'same',
  adaptCreate: (options) => options,
  // Docker's internal networks resolve only container names. Their bridge gets no address
  // (inhibit_ipv4): with one, the host would answer there, and every service of the host listening
  // on all addresses (sshd, a dev server, a database) would be in the sandbox's reach, past the proxy.
  createInternalNetwork: (name, labels, subnet) =>
    api('POST', '/networks/create', {
      Name: name,
      Internal: true,
      Labels: labels,
      CheckDuplicate: true,
      IPAM: { Driver: 'default', Config: [{ Subnet: subnet }] },
      Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true' },
    }),
  // Docker keeps bridge networks apart (its isolation chains); no other container joins this one.
  createPortsNetwork: (name, labels, subnet) =>
    api('POST', '/networks/create', {
      Name: name,
      Labels: labels,
      CheckDuplicate: true,
      IPAM: { Driver: 'default', Config: [{ Subnet: subnet }] },
      Options: { 'com.docker.network.bridge.enable_icc': 'false' },
    }),
  runningMayBeStale: false,
  dfFromLists: false,
  netnsGoesWithLastNetwork: false,
  resolvedRuntime: async () => undefined,
};

/**
 * Podman gives containers its own default rlimits (nofile 1048576, nproc 4194304), which fail at
 * start ("error setting rlimit type 7") wherever its service runs with lower hard limits: sbx asks
 * for limits that fit. Rootless Podman maps its user to root inside, so a workspace would be root's
 * there: `keep-id` maps the user to the same UID inside instead, for every container so that volumes
 * mean the same to all; keep-id would also make that UID the default user, but sbx-init must start as
 * root. Its internal networks (aardvark-dns 1.4) forward outside names to the host's resolvers, a
 * way out for data: they are made through Podman's own API without DNS (members find each other
 * through /etc/hosts).
 */
const podman = (rootless: boolean): Flavour => ({
  name: 'Podman',
  userMapping: rootless ? 'keep-id' : 'same',
  adaptCreate: (options) => {
    const keepId = rootless && !options.HostConfig?.UsernsMode;
    return {
      ...options,
      ...(keepId ? { User: options.User ?? '0:0' } : {}),
      HostConfig: {
        ...options.HostConfig,
        Ulimits: options.HostConfig?.Ulimits ?? podmanUlimits(),
        ...(keepId ? { UsernsMode: 'keep-id' } : {}),
      },
    };
  },
  createInternalNetwork: (name, labels, subnet) =>
    api('POST', '/v4.0.0/libpod/networks/create', {
      name,
      driver: 'bridge',
      internal: true,
      dns_enabled: false,
      labels,
      subnets: [{ subnet }],
    }),
  // Podman routes between its networks (and masquerades, so another network's container would
  // arrive from the gateway) unless the network is isolated.
  createPortsNetwork: (name, labels, subnet) =>
    api('POST', '/v4.0.0/libpod/networks/create', {
      name,
      driver: 'bridge',
      dns_enabled: false,
      labels,
      subnets: [{ subnet }],
      options: { isolate: 'true' },
    }),
  runningMayBeStale: true,
  dfFromLists: true,
  netnsGoesWithLastNetwork: rootless,
  resolvedRuntime: async (id) =>
    (await api<{ OCIRuntime?: string }>('GET', `/v4.0.0/libpod/containers/${encodeURIComponent(id)}/json`))
      .OCIRuntime || undefined,
});

export function flavourOf(engine: { podman: boolean; rootless: boolean }): Flavour {
  if (engine.podman) return podman(engine.rootless);
  return engine.rootless ? { ...docker, userMapping: 'root' } : docker;
}

/**
 * Open files: the hard limit this machine gives its processes when the engine is local (Podman's
 * service runs under the same), else 20000, which remote Linux hosts commonly allow; processes:
 * 4096, like the sandbox's default pids limit.
 */
export function podmanUlimits(
  limitsFile = '/proc/self/limits',
): Array<{ Name: string; Soft: number; Hard: number }> {
  let nofile = 20_000;
  if (isLocalEndpoint(currentEndpoint())) {
    try {
      const line = readFileSync(limitsFile, 'utf8')
        .split('\n')
        .find((l) => l.startsWith('Max open files'));
      const hard = Number(line?.split(/\s{2,}/)[2]);
      if (Number.isFinite(hard) && hard > 0) nofile = Math.min(hard, 1_048_576);
    } catch {}
  }
  return [
    { Name: 'nofile', Soft: nofile, Hard: nofile },
    { Name: 'nproc', Soft: 4096, Hard: 4096 },
  ];
}
