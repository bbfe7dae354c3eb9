/** sbx's labels: every sandbox is found again by these, never by a state file. */
export const LABEL = {
  managed: 'dev.sbx.managed',
  workspace: 'dev.sbx.workspace',
  agent: 'dev.sbx.agent',
  template: 'dev.sbx.template.ref',
  version: 'dev.sbx.version',
  uid: 'dev.sbx.uid',
  gid: 'dev.sbx.gid',
  /** The host user (UID) who made a sandbox or owns a login volume: their commands see only theirs. */
  user: 'dev.sbx.user',
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
  /** A sandbox with a Docker engine of its own (--docker): the volume that holds the engine's state. */
  docker: 'dev.sbx.docker-volume',
  /** Synced sandboxes (an engine that cannot see the workspace): the volume holding its copy. */
  sync: 'dev.sbx.sync-volume',
  /** Set when a sandbox was made with --no-sudo. */
  noSudo: 'dev.sbx.no-sudo',
  /** Sandboxes built from a dev container: its devcontainer.json, and its postStartCommand (JSON). */
  devcontainer: 'dev.sbx.devcontainer',
  postStart: 'dev.sbx.devcontainer.post-start',
  /** A --docker sandbox's dev container compose services, started in its own engine at each start (JSON). */
  composeServices: 'dev.sbx.devcontainer.services',
  /** Set on login volumes (and the old shared state volumes): the agent whose login it holds. */
  state: 'dev.sbx.state',
  /** Set on images: the agents installed in them. */
  agents: 'dev.sbx.agents',
  /** Set on template images: the content hash they were built from, and the template's folder. */
  templateHash: 'dev.sbx.template.hash',
  templateSource: 'dev.sbx.template.source',
  /** On dev container images without a package manager: what a sandbox normally has and it lacks. */
  missing: 'dev.sbx.missing',
  /** On sandbox networks: the sandbox it belongs to (also on the sandbox: its network). */
  network: 'dev.sbx.network',
  /** The secrets bound to a sandbox (names only; their placeholders are its variables). */
  secrets: 'dev.sbx.secrets',
  /** The egress proxy's name: on the proxy, its state volume and the sandbox networks it serves. */
  /** On the proxy also the hash of the proxy code it runs. */
  proxy: 'dev.sbx.proxy',
  proxyCode: 'dev.sbx.proxy.code',
  /** On port forwarders: the network of the sandbox whose ports it publishes. */
  forwarder: 'dev.sbx.forwarder',
  /** On sandboxes made with idle stop: after how many seconds without use they stop themselves. */
  idleStop: 'dev.sbx.idle-stop',
  /** On sandboxes made with --inner-sandbox (the agent's own sandbox works inside). */
  innerSandbox: 'dev.sbx.inner-sandbox',
  /**
   * The OCI runtime a sandbox was created with: the one asked for, else the engine's default then
   * (Podman reports every runtime as "oci" in the container's HostConfig).
   */
  runtime: 'dev.sbx.runtime',
  /** On images made by `sbx save`: the template name they answer to, and the sandbox they come from. */
  saved: 'dev.sbx.saved',
  savedFrom: 'dev.sbx.saved.from',
} as const;

/** Extra labels for everything sbx creates, from SBX_LABELS ("k=v,k2=v2"), e.g. to clean up after CI. */
export function extraLabels(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (env.SBX_LABELS ?? '').split(',')) {
    const [key, ...value] = pair.split('=');
    if (key?.trim()) out[key.trim()] = value.join('=').trim();
  }
  return out;
}

/** What every sandbox is known by, wherever it is handled: its container, workspace and owner inside. */
export interface SandboxRecord {
  id: string;
  name: string;
  workspace: string;
  /** The workspace owner's UID/GID, which the sandbox's agent user has inside. */
  uid: number;
  gid: number;
}

/**
 * What `sbx df` and `sbx prune` look at: with SBX_LABELS set (a CI job, the test suite), only what
 * carries those labels, so a job sees and reclaims its own resources and never a user's.
 */
export function inScope(
  labels: Record<string, string> | undefined,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return Object.entries(extraLabels(env)).every(([k, v]) => labels?.[k] === v);
}

/** The host user sbx runs as (their UID; '' where the system has none, e.g. Windows). */
export const currentUser = (): string => String(process.getuid?.() ?? '');

/**
 * Whether a sandbox (by its labels) is the user's own: made by them (dev.sbx.user); one made
 * before that label by its workspace owner's UID; one with neither (older still) is everyone's.
 * Without UIDs on the host everything is one user's.
 */
export function ownedBy(labels: Record<string, string> | undefined, user = currentUser()): boolean {
  const owner = labels?.[LABEL.user] ?? labels?.[LABEL.uid];
  return !user || owner === undefined || owner === user;
}
