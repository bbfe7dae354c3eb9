import { call } from './call.js';
import { currentEndpoint, engine } from './connection.js';
import { type Flavour, flavourOf } from './flavour.js';

export interface EngineInfo {
  /** Where sbx talks to the engine, and why that endpoint. */
  url: string;
  reason: string;
  name: string;
  version: string;
  apiVersion: string;
  os: string;
  memTotal: number;
  cpus: number;
  rootless: boolean;
  podman: boolean;
  dockerRootDir: string;
  /** What this engine needs done its own way (see flavour.ts). */
  flavour: Flavour;
}

let known: { url: string; info: Promise<EngineInfo> } | undefined;

/** What the engine says about itself: two round trips (info and version), made in parallel, once per process. */
export function engineInfo(): Promise<EngineInfo> {
  const { url } = currentEndpoint();
  if (known?.url !== url) {
    known = { url, info: readEngineInfo() };
    known.info.catch(() => {
      known = undefined;
    });
  }
  return known.info;
}

async function readEngineInfo(): Promise<EngineInfo> {
  const { endpoint } = await engine();
  const [info, version] = await Promise.all([
    call('engine info', (docker) => docker.info() as Promise<Record<string, unknown>>),
    call('engine version', (docker) => docker.version() as unknown as Promise<Record<string, unknown>>),
  ]);
  const components = (version.Components as Array<{ Name: string }> | undefined) ?? [];
  const security = (info.SecurityOptions as string[] | undefined) ?? [];
  // Docker says rootless among its security options; Podman in a field of its own.
  const rootless = security.some((s) => s.includes('rootless')) || info.Rootless === true;
  const podman = components.some((c) => /podman/i.test(c.Name));
  return {
    url: endpoint.url,
    reason: endpoint.reason,
    name: String(info.Name ?? ''),
    version: String(version.Version ?? ''),
    apiVersion: String(version.ApiVersion ?? ''),
    os: String(info.OperatingSystem ?? ''),
    memTotal: Number(info.MemTotal ?? 0),
    cpus: Number(info.NCPU ?? 0),
    rootless,
    podman,
    dockerRootDir: String(info.DockerRootDir ?? ''),
    flavour: flavourOf({ podman, rootless }),
  };
}
