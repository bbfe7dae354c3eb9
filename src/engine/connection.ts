import { existsSync } from 'node:fs';
import type Docker from 'dockerode';
import { SbxError } from '../cli/errors.js';
import { log } from '../cli/log.js';

const debug = log('engine');

export interface Endpoint {
  /** What the user would write as DOCKER_HOST. */
  url: string;
  /** Why this endpoint was chosen, for --debug and error messages. */
  reason: string;
  options: Docker.DockerOptions;
}

/**
 * Picks the engine: DOCKER_HOST when set, otherwise the first socket that exists among the rootful
 * Docker socket, rootless Docker's and Podman's (rootful, then rootless).
 */
export function resolveEndpoint(env: NodeJS.ProcessEnv = process.env): Endpoint {
  const host = env.DOCKER_HOST?.trim();
  if (host) return { ...fromUrl(host, env), reason: 'DOCKER_HOST' };
  const runtime = env.XDG_RUNTIME_DIR;
  const candidates: Array<[string, string]> = [
    ['/var/run/docker.sock', 'the Docker socket'],
    ...(runtime
      ? ([[`${runtime}/docker.sock`, 'the rootless Docker socket']] as Array<[string, string]>)
      : []),
    ['/run/podman/podman.sock', 'the Podman socket'],
    ...(runtime
      ? ([[`${runtime}/podman/podman.sock`, 'the rootless Podman socket']] as Array<[string, string]>)
      : []),
  ];
  const found = candidates.find(([path]) => existsSync(path)) ?? candidates[0]!;
  return {
    url: `unix://${found[0]}`,
    reason: existsSync(found[0]) ? found[1] : 'the default socket (none found)',
    options: { socketPath: found[0] },
  };
}

function fromUrl(url: string, env: NodeJS.ProcessEnv): Omit<Endpoint, 'reason'> {
  const parsed = /^(unix|tcp|http|https|npipe):\/\/(.*)$/.exec(url);
  if (!parsed) {
    throw new SbxError('usage', `DOCKER_HOST is set to "${url}", which sbx cannot read.`, {
      hint: 'Use unix:///path/to/docker.sock or tcp://host:port.',
    });
  }
  const [, scheme, rest] = parsed as unknown as [string, string, string];
  if (scheme === 'unix' || scheme === 'npipe') return { url, options: { socketPath: rest } };
  const [hostname, port] = rest.replace(/\/$/, '').split(':');
  const tls = env.DOCKER_TLS_VERIFY === '1' || scheme === 'https';
  return {
    url,
    options: {
      host: hostname ?? 'localhost',
      port: Number(port ?? (tls ? 2376 : 2375)),
      protocol: tls ? 'https' : 'http',
    },
  };
}

let chosen: Endpoint | undefined;

/** The engine this process talks to, chosen once (and said with --debug). */
export function currentEndpoint(): Endpoint {
  if (!chosen) {
    chosen = resolveEndpoint();
    debug('using %s (%s)', chosen.url, chosen.reason);
  }
  return chosen;
}

let cached: { endpoint: Endpoint; docker: Docker } | undefined;

/**
 * The dockerode client, created on first use. The hot paths (find, list, start, exec: every
 * reattach) speak HTTP to the engine directly (http.ts) and never load it.
 */
export async function engine(): Promise<{ endpoint: Endpoint; docker: Docker }> {
  if (cached) return cached;
  const endpoint = currentEndpoint();
  const { default: DockerClient } = await import('dockerode');
  cached = { endpoint, docker: new DockerClient(endpoint.options) };
  return cached;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT']);

/** Turns "nobody answered" into the error users can act on; leaves every other error alone. */
export function toEngineError(err: unknown, endpoint: Endpoint): unknown {
  const code = (err as { code?: string }).code;
  if (!code || !UNREACHABLE.has(code)) return err;
  const denied = code === 'EACCES';
  return new SbxError(
    'engineUnavailable',
    denied
      ? `Permission denied on the container engine at ${endpoint.url} (${endpoint.reason}).`
      : `No container engine answered at ${endpoint.url} (${endpoint.reason}).`,
    {
      cause: err,
      hint: denied
        ? 'Add your user to the docker group (sudo usermod -aG docker $USER, then log in again), or point DOCKER_HOST at an engine you can use.'
        : "Start Docker (sudo systemctl start docker, or open Docker Desktop), start Podman's API service (systemctl --user start podman.socket), or set DOCKER_HOST to a running engine.",
    },
  );
}
