import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { SbxError, usageError } from '../shared/errors.js';
import { log } from '../shared/log.js';

const debug = log('engine');

export interface Endpoint {
  /** What the user would write as DOCKER_HOST. */
  url: string;
  /** Why this endpoint was chosen, for `sbx doctor`, --debug and error messages. */
  reason: string;
  /** dockerode's options, plus the agent (TLS settings, SSH) that dockerode hands to docker-modem. */
  options: Docker.DockerOptions & { agent?: Agent };
}

/** An engine asked for by name: --host/--context, else the config's engine.host/engine.context. */
export interface EngineChoice {
  host?: string | undefined;
  context?: string | undefined;
  /** Where the choice came from ("--host", "config engine.context"). */
  from: string;
}

let choice: EngineChoice | undefined;
let chosen: Endpoint | undefined;
let cached: { endpoint: Endpoint; docker: Docker } | undefined;

/** Sets the engine the commands of this process use, before any engine call. */
export function chooseEngine(next: EngineChoice | undefined): void {
  choice = next;
  chosen = undefined;
  cached = undefined;
}

/**
 * Picks the engine, in order: --host/--context (or the config's engine.host/engine.context), then
 * DOCKER_HOST, then DOCKER_CONTEXT or the Docker CLI's current context, then the first socket that
 * exists among the rootful Docker socket, rootless Docker's and Podman's (rootful, then rootless).
 */
export function resolveEndpoint(
  env: NodeJS.ProcessEnv = process.env,
  pick: EngineChoice | undefined = choice,
): Endpoint {
  if (pick?.host) return fromUrl(pick.host, env, pick.from);
  if (pick?.context) return fromContext(pick.context, env, pick.from);
  const host = env.DOCKER_HOST?.trim();
  if (host) return fromUrl(host, env, 'DOCKER_HOST');
  if (env.DOCKER_CONTEXT) return fromContext(env.DOCKER_CONTEXT, env, 'DOCKER_CONTEXT');
  const current = currentContext(env);
  if (current && current !== 'default') {
    return fromContext(
      current,
      env,
      `the Docker CLI's current context (${join(dockerConfigDir(env), 'config.json')})`,
    );
  }
  return localSocket(env);
}

/** The first engine socket of this machine that exists: Docker's, rootless Docker's, Podman's. */
function localSocket(env: NodeJS.ProcessEnv, reason?: string): Endpoint {
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
  const found = candidates.find(([path]) => existsSync(path));
  const path = (found ?? candidates[0]!)[0];
  return {
    url: `unix://${path}`,
    reason:
      reason ??
      (found ? `${found[1]}; no DOCKER_HOST or context set` : 'the default socket (no engine socket found)'),
    options: { socketPath: path },
  };
}

const dockerConfigDir = (env: NodeJS.ProcessEnv) => env.DOCKER_CONFIG || join(homedir(), '.docker');

/** The Docker CLI's current context (`docker context use`), if its config names one. */
function currentContext(env: NodeJS.ProcessEnv): string | undefined {
  try {
    const config = JSON.parse(readFileSync(join(dockerConfigDir(env), 'config.json'), 'utf8'));
    return typeof config.currentContext === 'string' ? config.currentContext : undefined;
  } catch {
    return undefined;
  }
}

/** A Docker CLI context, read from its store: ~/.docker/contexts/{meta,tls}/<sha256 of the name>/. */
function fromContext(name: string, env: NodeJS.ProcessEnv, from: string): Endpoint {
  const reason = `${from}: context ${name}`;
  if (name === 'default') return localSocket(env, reason);
  const store = join(dockerConfigDir(env), 'contexts');
  const id = createHash('sha256').update(name).digest('hex');
  let meta: { Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } } };
  try {
    meta = JSON.parse(readFileSync(join(store, 'meta', id, 'meta.json'), 'utf8'));
  } catch {
    const known = contextNames(store);
    throw usageError(
      `The Docker context "${name}" (${from}) does not exist.`,
      `Known contexts: ${['default', ...known].join(', ')}. Create one with \`docker context create ${name} --docker host=ssh://user@host\`.`,
    );
  }
  const docker = meta.Endpoints?.docker;
  if (!docker?.Host)
    throw usageError(
      `The Docker context "${name}" has no Docker endpoint.`,
      'Check it with `docker context inspect`.',
    );
  const tls = join(store, 'tls', id, 'docker');
  return fromUrl(
    docker.Host,
    env,
    reason,
    existsSync(tls) ? { dir: tls, verify: !docker.SkipTLSVerify } : undefined,
  );
}

function contextNames(store: string): string[] {
  try {
    return readdirSync(join(store, 'meta')).flatMap((id) => {
      try {
        return [String(JSON.parse(readFileSync(join(store, 'meta', id, 'meta.json'), 'utf8')).Name)];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

/**
 * An endpoint from a DOCKER_HOST-style address: unix://, tcp:// (TLS as the Docker CLI does it:
 * DOCKER_TLS_VERIFY or DOCKER_TLS, certificates from DOCKER_CERT_PATH or ~/.docker), or
 * ssh://[user@]host[:port] (the system's ssh, running `docker system dial-stdio` there).
 */
function fromUrl(
  url: string,
  env: NodeJS.ProcessEnv,
  reason: string,
  tls?: { dir: string; verify: boolean },
): Endpoint {
  const parsed = /^(unix|tcp|http|https|npipe|ssh):\/\/(.*)$/.exec(url.trim());
  if (!parsed) {
    throw new SbxError('usage', `The engine address "${url}" (${reason}) is not one sbx can use.`, {
      hint: 'Use unix:///path/to/docker.sock, tcp://host:port or ssh://user@host.',
    });
  }
  const [, scheme, rest] = parsed as unknown as [string, string, string];
  if (scheme === 'unix' || scheme === 'npipe') return { url, reason, options: { socketPath: rest } };
  if (scheme === 'ssh')
    return { url, reason, options: { protocol: 'http', host: 'docker', agent: sshAgent(url, env) } };
  const [hostname, port] = rest.replace(/\/$/, '').split(':');
  const certs =
    tls ??
    (env.DOCKER_TLS_VERIFY || env.DOCKER_TLS || scheme === 'https'
      ? { dir: env.DOCKER_CERT_PATH || dockerConfigDir(env), verify: Boolean(env.DOCKER_TLS_VERIFY) }
      : undefined);
  const options: Endpoint['options'] = {
    host: hostname || 'localhost',
    port: Number(port || (certs ? 2376 : 2375)),
    protocol: certs ? 'https' : 'http',
  };
  if (certs) {
    const read = (file: string) => {
      const path = join(certs.dir, file);
      return existsSync(path) ? readFileSync(path) : undefined;
    };
    const [ca, cert, key] = [read('ca.pem'), read('cert.pem'), read('key.pem')];
    if (certs.verify && !ca) {
      throw usageError(
        `TLS verification of ${url} (${reason}) needs the CA certificate ${join(certs.dir, 'ca.pem')}, which does not exist.`,
        'Set DOCKER_CERT_PATH to the folder holding ca.pem, cert.pem and key.pem.',
      );
    }
    // An agent carries the TLS settings (dockerode has no rejectUnauthorized) and keeps connections.
    const https = createRequire(import.meta.url)('node:https') as typeof import('node:https');
    options.agent = new https.Agent({
      keepAlive: true,
      ...(ca ? { ca } : {}),
      ...(cert && key ? { cert, key } : {}),
      rejectUnauthorized: certs.verify,
    });
  }
  return { url, reason, options };
}

/**
 * Connections to an engine over SSH, made as the Docker CLI makes them: the system's ssh (so the
 * user's ~/.ssh/config, keys, agent and known_hosts apply) running `docker system dial-stdio` on the
 * remote host, whose stdio carries the engine's HTTP. SBX_SSH_COMMAND replaces "ssh" (like
 * GIT_SSH_COMMAND). Idle connections are kept for the next request of the same command, and at most
 * four are open at once: sshd drops handshakes beyond its MaxStartups (10 unauthenticated by default),
 * which parallel engine calls (a listing's inspections) would otherwise exceed.
 */
function sshAgent(url: string, env: NodeJS.ProcessEnv): Agent {
  const target = new URL(url);
  const [command, ...base] = (env.SBX_SSH_COMMAND || 'ssh').split(/\s+/).filter(Boolean) as [
    string,
    ...string[],
  ];
  const args = [
    ...base,
    ...(target.port ? ['-p', target.port] : []),
    '-o',
    'BatchMode=yes',
    '--',
    `${target.username ? `${decodeURIComponent(target.username)}@` : ''}${target.hostname}`,
    'docker',
    'system',
    'dial-stdio',
  ];
  const agent = new Agent({ keepAlive: true, maxSockets: 4 });
  agent.createConnection = () => {
    debug('ssh %s', args.join(' '));
    // child_process only here: no other engine connection needs it, and a reattach starts faster without.
    const { spawn } = createRequire(import.meta.url)(
      'node:child_process',
    ) as typeof import('node:child_process');
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    // The output ends only once ssh has exited, so a failed connection carries ssh's own words.
    const output = new PassThrough();
    child.stdout.pipe(output, { end: false });
    // And writes never fail with EPIPE when ssh is gone: its exit says why.
    const input = new PassThrough();
    input.pipe(child.stdin);
    child.stdin.on('error', () => {});
    const stream = Duplex.from({ readable: output, writable: input }) as Duplex & Record<string, unknown>;
    const handles = [child, child.stdin, child.stdout, child.stderr] as Array<{
      ref?(): void;
      unref?(): void;
    }>;
    Object.assign(stream, {
      setTimeout: () => stream,
      setNoDelay: () => stream,
      setKeepAlive: () => stream,
      ref: () => {
        for (const h of handles) h.ref?.();
      },
      unref: () => {
        for (const h of handles) h.unref?.();
      },
    });
    child.on('error', (err) => stream.destroy(err));
    child.on('close', (code) => {
      if (!code) {
        output.end();
        return;
      }
      const message = stderr.trim().split('\n').pop() || `ssh exited with ${code}`;
      stream.destroy(Object.assign(new Error(`ssh to ${target.host}: ${message}`), { code: 'ECONNREFUSED' }));
    });
    stream.on('close', () => child.kill());
    return stream as unknown as import('node:net').Socket;
  };
  return agent;
}

/** The engine this process talks to, chosen once (and said with --debug). */
export function currentEndpoint(): Endpoint {
  if (!chosen) {
    chosen = resolveEndpoint();
    debug('using %s (%s)', chosen.url, chosen.reason);
  }
  return chosen;
}

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

/** Whether the engine runs on this machine (a socket here), so host paths are its paths. */
export const isLocalEndpoint = (endpoint: Endpoint) => Boolean(endpoint.options.socketPath);

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT']);
const TLS_FAILURE = /^(ERR_TLS|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_VERIFY|CERT_|ERR_SSL|EPROTO)/;

/** Turns "nobody answered" into the error users can act on; leaves every other error alone. */
export function toEngineError(err: unknown, endpoint: Endpoint): unknown {
  const code = (err as { code?: string }).code;
  if (code && TLS_FAILURE.test(code)) {
    return new SbxError(
      'engineUnavailable',
      `The TLS connection to the container engine at ${endpoint.url} (${endpoint.reason}) failed: ${(err as Error).message}.`,
      {
        cause: err,
        hint: 'Set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH to the folder with the ca.pem, cert.pem and key.pem the engine expects (or use a Docker context holding them).',
      },
    );
  }
  if (!code || !UNREACHABLE.has(code)) return err;
  const denied = code === 'EACCES';
  return new SbxError(
    'engineUnavailable',
    denied
      ? `Permission denied on the container engine at ${endpoint.url} (${endpoint.reason}).`
      : `No container engine answered at ${endpoint.url} (${endpoint.reason})${(err as Error).message.startsWith('ssh') ? `: ${(err as Error).message}` : ''}.`,
    {
      cause: err,
      hint: denied
        ? /podman/.test(endpoint.url)
          ? "Use rootless Podman's own socket (systemctl --user enable --now podman.socket; sbx finds it under $XDG_RUNTIME_DIR), or give your group access to the rootful one."
          : 'Add your user to the docker group (sudo usermod -aG docker $USER, then log in again), or point DOCKER_HOST at an engine you can use.'
        : endpoint.url.startsWith('ssh://')
          ? `Check that \`ssh ${endpoint.url.slice('ssh://'.length)} docker version\` works from this shell (keys, known_hosts, docker on that host's PATH); SBX_SSH_COMMAND sets extra ssh options, e.g. "ssh -i ~/.ssh/other_key".`
          : "Start Docker (sudo systemctl start docker, or open Docker Desktop), start Podman's API service (systemctl --user start podman.socket), or choose another engine with --host, --context or DOCKER_HOST.",
    },
  );
}
