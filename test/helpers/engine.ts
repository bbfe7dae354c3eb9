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

/** Runs a command in a container as root and returns its stdout (for checks from outside sbx). */
export async function execOutput(id: string, cmd: string[]): Promise<string> {
  const exec = await docker
    .getContainer(id)
    .exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: '0' });
  const stream = await exec.start({ hijack: true, stdin: false });
  const { PassThrough } = await import('node:stream');
  const out = new PassThrough();
  let text = '';
  out.on('data', (d) => {
    text += d;
  });
  docker.modem.demuxStream(stream, out, new PassThrough());
  await new Promise((r) => stream.on('end', r));
  return text;
}
