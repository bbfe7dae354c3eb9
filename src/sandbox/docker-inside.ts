/**
 * A Docker engine of the sandbox's own (--docker, see docs/docker-inside.md): rootless Podman serving
 * Docker's API as the agent user, inside the sandbox's namespaces, cgroup and network. What the
 * sandbox needs for it beyond an ordinary one, and nothing more: /dev/net/tun (pasta, the inner
 * containers' user-mode network) and a seccomp profile that lets a process use namespaces of its own
 * (the kernel confines what it can do there to what that user namespace owns). Its capabilities are
 * an ordinary sandbox's: CAP_SETFCAP stays dropped (only a map that includes the sandbox's own root
 * needs it, and with it root in the sandbox could map itself into a user namespace of its own).
 */
import { execCapture } from '../engine/exec.js';
import { SbxError, usageError } from '../shared/errors.js';
import { LABEL } from '../shared/labels.js';
import { CLONE_FLAGS, defaultSeccomp, relaxForNestedNamespaces } from './seccomp.js';
import type { Addition } from './spec.js';

/** Where the inner engine keeps its images, containers and volumes (the sandbox's volume). */
export const DOCKER_STORE = '/var/lib/sbx-docker';
/** The inner engine's log (written by sbx-docker-start at every start). */
export const DOCKER_LOG = `${DOCKER_STORE}/engine.log`;
/** The standard socket path the docker CLI and libraries look at (DOCKER_HOST says it too). */
export const DOCKER_SOCKET = '/var/run/docker.sock';

/** The volume of a sandbox's inner engine. */
export const dockerVolume = (sandbox: string) => `${sandbox}-docker`;

/**
 * The namespaces --docker sandboxes may create: every type but cgroup (and time, which only unshare
 * knows). Podman runs its containers in the sandbox's cgroup namespace (containers.conf cgroupns=host);
 * a cgroup namespace of one's own would let root in the sandbox mount its cgroup hierarchy and raise
 * the sandbox's own limits.
 */
const DOCKER_NAMESPACES =
  Object.values(CLONE_FLAGS).reduce((a, b) => a | b, 0) & ~CLONE_FLAGS.CLONE_NEWCGROUP;

/**
 * Syscalls the engine's default profile allows only with a capability the sandbox does not have
 * (CAP_SYS_ADMIN, CAP_SYS_CHROOT), which rootless Podman, crun and pasta use inside their own user
 * namespace: entering namespaces (setns), chroot (image layers are unpacked in one) and the new
 * mount API. The kernel checks the capability in the user namespace that owns the target, so in the
 * sandbox's own namespaces they fail as before.
 */
export const OWN_NAMESPACE_SYSCALLS = [
  'chroot',
  'setns',
  'open_tree',
  'move_mount',
  'fsopen',
  'fsconfig',
  'fsmount',
  'fspick',
  'mount_setattr',
] as const;

let cached: string | undefined;

/**
 * The seccomp profile of --docker sandboxes: the nested-namespace profile of the inner guard
 * (seccomp.ts), with UTS and IPC namespaces allowed to clone/unshare too (pasta and crun make them;
 * a namespace other than a user namespace needs CAP_SYS_ADMIN in the user namespace that owns it,
 * which a sandbox has only in one it made) and OWN_NAMESPACE_SYSCALLS. Cgroup and time namespaces
 * stay refused. Unlike every other sandbox's profile, it keeps setuid/setgid modes (no
 * withoutPrivilegedModes): the inner engine unpacks image layers, and nearly every image holds
 * setuid or setgid files (measured: `docker load` of debian:trixie-slim fails on
 * /usr/sbin/unix_chkpwd with the filter). So root in a --docker sandbox can leave a setuid-root file
 * in the workspace; docs/docker-inside.md and docs/security.md say so.
 */
export function dockerSeccomp(): string {
  if (cached) return cached;
  const profile = relaxForNestedNamespaces(defaultSeccomp());
  for (const rule of profile.syscalls) {
    if (!rule.names.some((n) => n === 'clone' || n === 'unshare')) continue;
    for (const arg of rule.args ?? [])
      if (arg.op === 'SCMP_CMP_MASKED_EQ' && !rule.includes?.caps) arg.value &= ~DOCKER_NAMESPACES;
  }
  profile.syscalls.push({
    names: [...OWN_NAMESPACE_SYSCALLS],
    action: 'SCMP_ACT_ALLOW',
    args: [],
    comment:
      "sbx --docker: setns, chroot and the mount API, confined by the kernel to the caller's own namespaces",
    includes: {},
    excludes: { caps: ['CAP_SYS_ADMIN'] },
  });
  cached = JSON.stringify(profile);
  return cached;
}

/**
 * What --docker adds to a new sandbox (after the security addition; its capabilities stay as they
 * are). `seccomp` is dockerSeccomp() as the engine takes it: its text (Docker) or a file (Podman).
 */
export function dockerAddition(sandbox: string, seccomp: string): Addition {
  return {
    mounts: [{ Type: 'volume', Source: dockerVolume(sandbox), Target: DOCKER_STORE }],
    labels: { [LABEL.docker]: dockerVolume(sandbox) },
    host: {
      SecurityOpt: [`seccomp=${seccomp}`],
      Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }],
    },
  };
}

/** --docker with what it cannot work with: refused before anything is built or made. */
export function checkDockerRequest(o: {
  mountDockerSocket: boolean;
  noSudo: boolean;
  runtime: string | undefined;
  gvisor: boolean;
}): void {
  if (o.mountDockerSocket)
    throw usageError(
      "--docker gives the sandbox an engine of its own so that it never needs the host's; --mount-docker-socket would hand it the host's engine (root on the host) as well. Nothing was created.",
      'Drop --mount-docker-socket: inside a --docker sandbox, docker and docker compose talk to the inner engine.',
    );
  if (o.noSudo)
    throw usageError(
      "--docker and --no-sudo cannot go together: --no-sudo sets no-new-privileges, under which newuidmap cannot take the capability it needs to map the inner engine's users. Nothing was created.",
      'Drop one of them. Without sudo the agent still cannot become root: run the sandbox with --docker and keep sudo, or with --no-sudo and without an inner engine.',
    );
  if (o.gvisor)
    throw usageError(
      `--docker does not work under the runtime ${o.runtime}: gVisor does not honour file capabilities, so newuidmap cannot write the ID map of the inner engine's user namespace (rootless Podman fails to start). Nothing was created.`,
      'Run the sandbox under the default runtime (drop --runtime, or unset config runtime/runtimes.AGENT for it); see docs/docker-inside.md.',
    );
}

/**
 * Waits until the inner engine answers on its socket; when it does not within the deadline, an
 * error with the last lines of its log and a hint.
 */
export async function waitForInnerEngine(id: string, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const probe = await execCapture(id, ['test', '-S', DOCKER_SOCKET]).catch(() => undefined);
    if (probe?.code === 0) return;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const log = await execCapture(id, ['tail', '-n', '15', DOCKER_LOG]).catch(() => undefined);
  const lines = log?.stdout.trim() || '(the log is empty)';
  throw new SbxError(
    'engineUnavailable',
    `The Docker engine inside ${name} did not start within ${Math.round(timeoutMs / 1000)}s. The last lines of its log (${DOCKER_LOG}):\n${lines}`,
    {
      hint: `Look at the whole log with \`sbx exec ${name} -- cat ${DOCKER_LOG}\`, and try \`sbx stop ${name}\` then \`sbx start ${name}\`; if it keeps failing, remove the sandbox (sbx rm -f ${name}; your workspace files stay) and report the log.`,
    },
  );
}

/**
 * The inner engine's disk use in bytes (its volume), read inside the sandbox; undefined when it does
 * not run. du still prints its total when a file vanished under it (the engine at work) and exits 1.
 */
export async function innerEngineBytes(id: string): Promise<number | undefined> {
  const du = await execCapture(id, ['du', '-sxb', DOCKER_STORE]).catch(() => undefined);
  const total = /^(\d+)\s/.exec(du?.stdout ?? '')?.[1];
  const bytes = total ? Number.parseInt(total, 10) : Number.NaN;
  return Number.isFinite(bytes) ? bytes : undefined;
}
