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
  for (const n of await docker.listNetworks({ filters }))
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => {});
}

/** The sbx container of a workspace, via the engine's own view. */
export async function containersOf(workspace: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`dev.sbx.workspace=${workspace}`] } });
}
