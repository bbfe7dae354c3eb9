import { callOrMissing, track } from './call.js';
import { isAddressTaken, isAlreadyConnected, isSubnetTaken } from './errors.js';
import { api, query } from './http.js';
import { engineInfo } from './system.js';

/**
 * Creates a network on the first of `subnets` the engine accepts (one that overlaps a network it has
 * is refused, and the next is tried) and returns that subnet; each engine makes it its own way (see
 * Flavour): `internal`, a sandbox's (no route out, and no DNS for outside names), or `ports`, a port
 * forwarder's alone.
 */
export async function createNetwork(
  kind: 'internal' | 'ports',
  name: string,
  labels: Record<string, string>,
  subnets: Iterable<string>,
): Promise<string> {
  const { flavour } = await engineInfo();
  let tried = 0;
  for (const subnet of subnets) {
    try {
      await track(`create ${kind} network ${name} on ${subnet}`, () =>
        kind === 'internal'
          ? flavour.createInternalNetwork(name, labels, subnet)
          : flavour.createPortsNetwork(name, labels, subnet),
      );
      return subnet;
    } catch (err) {
      if (!isSubnetTaken(err) || ++tried >= 64) throw err;
    }
  }
  throw new Error(`no free subnet for a ${kind} network`);
}

/** The IPv4 subnets of the engine's networks. */
export async function networkSubnets(): Promise<string[]> {
  const networks = await track('list networks', () =>
    api<Array<{ IPAM?: { Config?: Array<{ Subnet?: string }> | null } }>>('GET', '/networks'),
  );
  return networks.flatMap((n) => (n.IPAM?.Config ?? []).flatMap((c) => (c.Subnet ? [c.Subnet] : [])));
}

/**
 * Connects a container to a network under an alias, at `address` when given (taken by another, as on
 * a network made before sbx fixed addresses: wherever the engine puts it); already connected is success.
 */
export async function connectNetwork(
  network: string,
  containerId: string,
  alias: string,
  address?: string,
): Promise<void> {
  try {
    await track(`connect ${containerId.slice(0, 12)} to ${network}`, () =>
      api('POST', `/networks/${encodeURIComponent(network)}/connect`, {
        Container: containerId,
        EndpointConfig: { Aliases: [alias], ...(address ? { IPAMConfig: { IPv4Address: address } } : {}) },
      }),
    );
  } catch (err) {
    if (isAlreadyConnected(err)) return;
    if (address && isAddressTaken(err)) return connectNetwork(network, containerId, alias);
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
): Promise<
  Array<{ name: string; labels: Record<string, string>; subnet: string | undefined; created: number }>
> {
  const networks = await track('list networks', () =>
    api<
      Array<{
        Name: string;
        Labels?: Record<string, string> | null;
        IPAM?: { Config?: Array<{ Subnet?: string }> | null };
        Created: string;
      }>
    >('GET', `/networks?${query({ filters: { label: labels } })}`),
  );
  return networks.map((n) => ({
    name: n.Name,
    labels: n.Labels ?? {},
    subnet: n.IPAM?.Config?.[0]?.Subnet,
    created: Date.parse(n.Created),
  }));
}
