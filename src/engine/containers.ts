import { readFileSync } from 'node:fs';
import type Docker from 'dockerode';
import { call, callOrMissing, orMissing, statusOf, track } from './call.js';
import { currentEndpoint, isLocalEndpoint } from './connection.js';
import { api, query } from './http.js';
import { engineInfo } from './system.js';

export type ContainerInfo = Docker.ContainerInspectInfo;

/** The container by name or id, or undefined when the engine has none. One round trip. */
export function inspectContainer(nameOrId: string): Promise<ContainerInfo | undefined> {
  return orMissing(
    track(`inspect container ${nameOrId}`, () =>
      api<ContainerInfo>('GET', `/containers/${encodeURIComponent(nameOrId)}/json`),
    ),
  );
}

/**
 * Creates a container; when the name is already taken (another sbx created it a moment ago),
 * returns undefined so the caller can adopt the existing one instead of making a second.
 */
export async function createContainer(options: Docker.ContainerCreateOptions): Promise<string | undefined> {
  const adapted = await forEngine(options);
  try {
    const container = await call(`create container ${options.name}`, (docker) =>
      docker.createContainer(adapted),
    );
    return container.id;
  } catch (err) {
    // Docker says 409; Podman says 500 "... is already in use".
    if (statusOf(err) === 409 || /name .* is already in use/.test(String((err as Error).message)))
      return undefined;
    throw err;
  }
}

/**
 * What one engine needs that another does not. Podman gives containers its own default rlimits
 * (nofile 1048576, nproc 4194304), which fail at start ("error setting rlimit type 7") wherever its
 * service runs with lower hard limits: sbx asks for limits that fit (see podmanUlimits). Rootless
 * Podman maps its user to root inside, so a workspace would be root's there: `keep-id` maps the user
 * to the same UID inside instead (see sandboxOwner), for every container so that volumes mean the
 * same to all; keep-id would also make that UID the default user, but sbx-init must start as root.
 */
async function forEngine(options: Docker.ContainerCreateOptions): Promise<Docker.ContainerCreateOptions> {
  const { podman, rootless } = await engineInfo();
  if (!podman) return options;
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
}

/** Starts a container; already running (304) is success. */
export async function startContainer(id: string): Promise<void> {
  await track(`start container ${id.slice(0, 12)}`, () =>
    api('POST', `/containers/${encodeURIComponent(id)}/start`),
  );
}

/** Stops (if needed) and removes a container; already gone (404) or going is success. */
export async function removeContainer(id: string, force: boolean): Promise<void> {
  try {
    await callOrMissing(`remove container ${id.slice(0, 12)}`, (docker) =>
      docker.getContainer(id).remove({ force }),
    );
  } catch (err) {
    // Another caller is removing it (409 "removal ... is already in progress"): it is going.
    if (!(statusOf(err) === 409 && /already in progress/.test(String((err as Error).message)))) throw err;
  }
}

/** Containers carrying every given label (key or key=value), running or not. One round trip. */
export function listContainers(labels: string[]): Promise<Docker.ContainerInfo[]> {
  return track(`list containers ${labels.join(',')}`, () =>
    api<Docker.ContainerInfo[]>(
      'GET',
      `/containers/json?${query({ all: true, filters: { label: labels } })}`,
    ),
  );
}

/** Stops a container (SIGTERM, then SIGKILL after `seconds`); already stopped (304) is success. */
export async function stopContainer(id: string, seconds = 10): Promise<void> {
  try {
    await call(`stop container ${id.slice(0, 12)}`, (docker) => docker.getContainer(id).stop({ t: seconds }));
  } catch (err) {
    if (statusOf(err) !== 304) throw err;
  }
}

/**
 * Runs a short-lived helper container to completion and returns its exit code and output (stdout
 * and stderr together), then removes it. Used for work on volumes that no sandbox is running with.
 */
export async function runHelper(
  options: Docker.ContainerCreateOptions,
): Promise<{ code: number; output: string }> {
  const adapted = await forEngine(options);
  const container = await call(`create helper from ${options.Image}`, (docker) =>
    docker.createContainer(adapted),
  );
  try {
    const stream = await call('attach helper', () =>
      container.attach({ stream: true, stdout: true, stderr: true }),
    );
    let output = '';
    const { PassThrough } = await import('node:stream');
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) => {
      output += d.toString();
    });
    container.modem.demuxStream(stream, sink, sink);
    await call('start helper', () => container.start());
    const { StatusCode } = (await call('wait for helper', () => container.wait())) as { StatusCode: number };
    return { code: StatusCode, output };
  } finally {
    await callOrMissing('remove helper', () => container.remove({ force: true }));
  }
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

/** Paths of a container's filesystem changed from its image: kind 0 changed, 1 added, 2 deleted. */
export async function containerChanges(id: string): Promise<Array<{ path: string; kind: number }>> {
  const changes = await track(`changes of ${id.slice(0, 12)}`, () =>
    api<Array<{ Path: string; Kind: number }> | null>('GET', `/containers/${encodeURIComponent(id)}/changes`),
  );
  return (changes ?? []).map((c) => ({ path: c.Path, kind: c.Kind }));
}
