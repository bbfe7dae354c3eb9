import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { call, callOrMissing, orMissing, track } from './call.js';
import { isNameTaken, isNotModified, isRemovalInProgress } from './errors.js';
import { demux } from './exec.js';
import { api, query } from './http.js';

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
  const adapted = (await (await import('./system.js')).engineInfo()).flavour.adaptCreate(options);
  try {
    const { name, ...body } = adapted;
    const created = await track(`create container ${options.name}`, () =>
      api<{ Id: string }>('POST', `/containers/create${name ? `?${query({ name })}` : ''}`, body),
    );
    return created.Id;
  } catch (err) {
    if (isNameTaken(err)) return undefined;
    throw err;
  }
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
    if (!isRemovalInProgress(err)) throw err;
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
    if (!isNotModified(err)) throw err;
  }
}

/**
 * Runs a short-lived helper container to completion and returns its exit code and output (stdout
 * and stderr together), then removes it. Used for work on volumes that no sandbox is running with.
 */
export async function runHelper(
  options: Docker.ContainerCreateOptions,
): Promise<{ code: number; output: string }> {
  const adapted = (await (await import('./system.js')).engineInfo()).flavour.adaptCreate(options);
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
    demux(stream as unknown as Readable, sink, sink);
    await call('start helper', () => container.start());
    const { StatusCode } = (await call('wait for helper', () => container.wait())) as { StatusCode: number };
    return { code: StatusCode, output };
  } finally {
    await callOrMissing('remove helper', () => container.remove({ force: true }));
  }
}

/** Paths of a container's filesystem changed from its image: kind 0 changed, 1 added, 2 deleted. */
export async function containerChanges(id: string): Promise<Array<{ path: string; kind: number }>> {
  const changes = await track(`changes of ${id.slice(0, 12)}`, () =>
    api<Array<{ Path: string; Kind: number }> | null>('GET', `/containers/${encodeURIComponent(id)}/changes`),
  );
  return (changes ?? []).map((c) => ({ path: c.Path, kind: c.Kind }));
}
