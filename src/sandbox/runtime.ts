import { basename } from 'node:path';
import { SbxError, usageError } from '../shared/errors.js';
import { parseRuntime } from '../shared/parse.js';

/** gVisor's OCI runtime, as Debian and gVisor's own packages install and name it. */
export const GVISOR = 'runsc';

/**
 * The OCI runtime of a new sandbox: --runtime, else SBX_RUNTIME, else the agent's configured one,
 * else the configured one, else undefined (the engine's default). A runtime the engine does not list
 * is refused before anything is made, with how to register it.
 */
export function chooseRuntime(
  requested: string | undefined,
  config: { runtime?: string; runtimes?: Record<string, string> },
  agent: string,
  engine: { runtimes: string[]; podman: boolean; url: string },
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  const fromEnv = env.SBX_RUNTIME?.trim() ? parseRuntime(env.SBX_RUNTIME) : undefined;
  const [runtime, from] =
    requested !== undefined
      ? [requested, '--runtime']
      : fromEnv !== undefined
        ? [fromEnv, 'SBX_RUNTIME']
        : config.runtimes?.[agent] !== undefined
          ? [config.runtimes[agent], `config runtimes.${agent}`]
          : [config.runtime, 'config runtime'];
  if (runtime === undefined || engine.runtimes.includes(runtime)) return runtime;
  throw new SbxError(
    'notFound',
    `The engine at ${engine.url} has no runtime named ${runtime} (asked for by ${from}); it has: ${engine.runtimes.join(', ') || 'none listed'}. Nothing was created.`,
    { hint: registerHint(runtime, engine.podman) },
  );
}

/** How to make an engine know a runtime by name, without restarting it where it can reload. */
export function registerHint(runtime: string, podman: boolean): string {
  const path = runtime === GVISOR ? '/usr/bin/runsc' : `/path/to/${runtime}`;
  const install = runtime === GVISOR ? 'Install gVisor (Debian/Ubuntu: apt-get install runsc), then r' : 'R';
  if (podman)
    return `${install}egister it in containers.conf: under [engine.runtimes] add ${runtime} = ["${path}"]; Podman reads it at the next command (restart \`podman system service\`). See docs/runtimes.md.`;
  return `${install}egister it with Docker: add "runtimes": {"${runtime}": {"path": "${path}"${runtime === GVISOR ? ', "runtimeArgs": ["--network=host", "--host-uds=open"]' : ''}}} to /etc/docker/daemon.json (keep what is there), then reload the engine without stopping containers: sudo kill -HUP $(cat /var/run/docker.pid) (or sudo systemctl reload docker). \`sbx doctor\` shows the runtimes it knows. See docs/runtimes.md.`;
}

/** Whether a runtime the engine knows is gVisor: named runsc, or registered with runsc as its program. */
export function isGvisor(
  runtime: string | undefined,
  details: Record<string, { path: string; args: string[] }>,
): boolean {
  if (runtime === undefined) return false;
  return runtime === GVISOR || basename(details[runtime]?.path ?? '') === GVISOR;
}

/**
 * Whether a new sandbox gets the inner guard: --inner-sandbox/--no-inner-sandbox, else the agent's
 * configured choice, else the configured one, else no.
 */
export function chooseInnerSandbox(
  requested: boolean | undefined,
  config: { innerSandbox?: boolean; innerSandboxes?: Record<string, boolean> },
  agent: string,
): boolean {
  return requested ?? config.innerSandboxes?.[agent] ?? config.innerSandbox ?? false;
}

/** What `--inner-sandbox` costs under runc, said by its help, `sbx doctor` and the docs alike. */
export const INNER_SANDBOX_COST =
  "Under runc it gives the sandbox a seccomp profile that also allows user, mount, network and PID namespaces, which exposes more of the host's kernel to the agent; under gVisor (--runtime runsc) the engine's default profile stays and the agent only reaches gVisor's own kernel.";

/**
 * gVisor mounts no host socket unless runsc is given --host-uds: a sandbox asking for the Docker
 * socket (or a -v of a socket) under a runsc without it would fail to start; refused before anything
 * is made instead.
 */
export function checkSocketMount(
  runtime: string | undefined,
  details: Record<string, { path: string; args: string[] }>,
  socket: string | undefined,
): void {
  if (runtime === undefined || socket === undefined || !isGvisor(runtime, details)) return;
  const { args = [] } = details[runtime] ?? {};
  if (args.some((a) => /^--?(host-uds=(open|all)|fsgofer-host-uds(=true)?)$/.test(a))) return;
  throw usageError(
    `The runtime ${runtime} (gVisor) cannot mount the socket ${socket}: runsc reaches host sockets only when the engine starts it with --host-uds=open.`,
    `Add "--host-uds=open" to the runtimeArgs of ${runtime} in /etc/docker/daemon.json and reload the engine (sudo kill -HUP $(cat /var/run/docker.pid)), or create this sandbox under runc (--runtime runc). See docs/runtimes.md.`,
  );
}
