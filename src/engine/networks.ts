import { call, callOrMissing, statusOf } from './call.js';

/** Creates an internal network (no route out) and returns its subnet; an existing one is reused. */
export async function ensureInternalNetwork(name: string, labels: Record<string, string>): Promise<string> {
  const existing = await callOrMissing(`inspect network ${name}`, (docker) =>
    docker.getNetwork(name).inspect(),
  );
  const info =
    existing ??
    (await call(`create network ${name}`, async (docker) => {
      const network = await docker.createNetwork({
        Name: name,
        Internal: true,
        Labels: labels,
        CheckDuplicate: true,
      });
      return network.inspect();
    }));
  const subnet = (info as { IPAM?: { Config?: Array<{ Subnet?: string }> } }).IPAM?.Config?.find((c) =>
    c.Subnet?.includes('.'),
  )?.Subnet;
  if (!subnet) throw new Error(`the network ${name} has no IPv4 subnet`);
  return subnet;
}

/** Connects a container to a network under an alias; already connected is success. */
export async function connectNetwork(network: string, containerId: string, alias: string): Promise<void> {
  try {
    await call(`connect ${containerId.slice(0, 12)} to ${network}`, (docker) =>
      docker.getNetwork(network).connect({ Container: containerId, EndpointConfig: { Aliases: [alias] } }),
    );
  } catch (err) {
    if (statusOf(err) === 403 && /already exists|already attached/i.test(String((err as Error).message)))
      return;
    throw err;
  }
}

/** Disconnects everything from a network and removes it; already gone is success. */
export async function removeNetwork(name: string): Promise<void> {
  const info = (await callOrMissing(`inspect network ${name}`, (docker) =>
    docker.getNetwork(name).inspect(),
  )) as { Containers?: Record<string, unknown> } | undefined;
  if (!info) return;
  for (const id of Object.keys(info.Containers ?? {})) {
    await callOrMissing(`disconnect ${id.slice(0, 12)} from ${name}`, (docker) =>
      docker.getNetwork(name).disconnect({ Container: id, Force: true }),
    );
  }
  await callOrMissing(`remove network ${name}`, (docker) => docker.getNetwork(name).remove());
}

/** Networks carrying every given label. */
export async function listNetworks(
  labels: string[],
): Promise<Array<{ name: string; labels: Record<string, string> }>> {
  const networks = await call('list networks', (docker) =>
    docker.listNetworks({ filters: { label: labels } }),
  );
  return networks.map((n) => ({ name: n.Name, labels: n.Labels ?? {} }));
}
