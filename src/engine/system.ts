import { call } from './call.js';
import { currentEndpoint, engine } from './connection.js';

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
  /** The OCI runtimes the engine knows by name (Docker: daemon.json "runtimes"), and its default one. */
  runtimes: string[];
  defaultRuntime: string;
  /** Each runtime's program and the arguments the engine gives it (daemon.json "runtimeArgs"). */
  runtimeDetails: Record<string, { path: string; args: string[] }>;
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
  const runtimes =
    (info.Runtimes as Record<string, { path?: string; runtimeArgs?: string[] }> | undefined) ?? {};
  return {
    url: endpoint.url,
    reason: endpoint.reason,
    name: String(info.Name ?? ''),
    version: String(version.Version ?? ''),
    apiVersion: String(version.ApiVersion ?? ''),
    os: String(info.OperatingSystem ?? ''),
    memTotal: Number(info.MemTotal ?? 0),
    cpus: Number(info.NCPU ?? 0),
    // Docker says so among its security options; Podman in a field of its own.
    rootless: security.some((s) => s.includes('rootless')) || info.Rootless === true,
    podman: components.some((c) => /podman/i.test(c.Name)),
    dockerRootDir: String(info.DockerRootDir ?? ''),
    runtimes: Object.keys(runtimes).sort(),
    runtimeDetails: Object.fromEntries(
      Object.entries(runtimes).map(([name, r]) => [name, { path: r.path ?? '', args: r.runtimeArgs ?? [] }]),
    ),
    defaultRuntime: String(info.DefaultRuntime ?? ''),
  };
}
