import Docker from 'dockerode';
import { RUN_ID, TEST_LABEL } from './cli.js';

export const docker = new Docker();

/** For containers a test starts itself: Podman's default rlimits do not fit this host (sbx sets its own). */
export const FITTING_LIMITS = {
  Ulimits: [
    { Name: 'nofile', Soft: 1024, Hard: 1024 },
    { Name: 'nproc', Soft: 4096, Hard: 4096 },
  ],
};

/** Removes every container, image, volume and network this test run labelled (on Docker's socket, or on `engine`). */
export async function cleanupTestResources(engine: Docker = docker): Promise<void> {
  const filters = { label: [`${TEST_LABEL}=${RUN_ID}`] };
  for (const c of await engine.listContainers({ all: true, filters })) {
    await engine
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => {});
  }
  for (const i of await engine.listImages({ filters })) {
    await engine
      .getImage(i.Id)
      .remove({ force: true })
      .catch(() => {});
  }
  const { Volumes } = await engine.listVolumes({ filters });
  for (const v of Volumes ?? [])
    await engine
      .getVolume(v.Name)
      .remove()
      .catch(() => {});
  for (const n of await engine.listNetworks({ filters })) {
    // The shared egress proxy stays joined to sandbox networks until they are removed.
    const network = engine.getNetwork(n.Id);
    const info = (await network.inspect().catch(() => ({}))) as { Containers?: Record<string, unknown> };
    for (const id of Object.keys(info.Containers ?? {}))
      await network.disconnect({ Container: id, Force: true }).catch(() => {});
    await network.remove().catch(() => {});
  }
}

/** The sbx container of a workspace, via the engine's own view. */
export async function containersOf(workspace: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`dev.sbx.workspace=${workspace}`] } });
}

/** Runs a command in a container through the engine's API (as root) and returns its stdout. */
export async function execIn(container: string, cmd: string[], engine: Docker = docker): Promise<string> {
  const exec = await engine
    .getContainer(container)
    .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  const { PassThrough } = await import('node:stream');
  const out = new PassThrough().on('data', (c: Buffer) => chunks.push(c));
  engine.modem.demuxStream(stream, out, new PassThrough());
  await new Promise((resolve) => stream.on('end', resolve));
  return Buffer.concat(chunks).toString();
}

/** Polls `probe` every 100 ms until it gives a value (neither undefined nor false) and returns it; fails naming `what` after the deadline. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; ) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}
