import Docker from 'dockerode';
import { RUN_ID, TEST_LABEL } from './cli.js';

export const docker = new Docker();

/** Removes every container, image, volume and network this test run labelled. */
export async function cleanupTestResources(): Promise<void> {
  const filters = { label: [`${TEST_LABEL}=${RUN_ID}`] };
  for (const c of await docker.listContainers({ all: true, filters })) {
    await docker
      .getContainer(c.Id)
      .remove({ force: true, v: true })
      .catch(() => {});
  }
  for (const i of await docker.listImages({ filters })) {
    await docker
      .getImage(i.Id)
      .remove({ force: true })
      .catch(() => {});
  }
  const { Volumes } = await docker.listVolumes({ filters });
  for (const v of Volumes ?? [])
    await docker
      .getVolume(v.Name)
      .remove()
      .catch(() => {});
  for (const n of await docker.listNetworks({ filters })) {
    // The shared egress proxy stays joined to sandbox networks until they are removed.
    const network = docker.getNetwork(n.Id);
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
