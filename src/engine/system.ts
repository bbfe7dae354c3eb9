import { call, track } from './call.js';
import { currentEndpoint } from './connection.js';
import { type Flavour, flavourOf } from './flavour.js';
import { api } from './http.js';

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
  const endpoint = currentEndpoint();
  const [info, version] = await Promise.all([
    track('engine info', () => api<Record<string, unknown>>('GET', '/info')),
    track('engine version', () => api<Record<string, unknown>>('GET', '/version')),
  ]);
  const components = (version.Components as Array<{ Name: string }> | undefined) ?? [];
  const security = (info.SecurityOptions as string[] | undefined) ?? [];
  // Docker says rootless among its security options; Podman in a field of its own.
  const rootless = security.some((s) => s.includes('rootless')) || info.Rootless === true;
  const podman = components.some((c) => /podman/i.test(c.Name));
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
    rootless,
    podman,
    dockerRootDir: String(info.DockerRootDir ?? ''),
    flavour: flavourOf({ podman, rootless }),
    runtimes: Object.keys(runtimes).sort(),
    runtimeDetails: Object.fromEntries(
      Object.entries(runtimes).map(([name, r]) => [name, { path: r.path ?? '', args: r.runtimeArgs ?? [] }]),
    ),
    defaultRuntime: String(info.DefaultRuntime ?? ''),
  };
}

/** What the engine's own disk accounting (`GET /system/df`) says, in the fields sbx reads. */
export interface DiskUsage {
  /** Bytes of every image layer on the engine, each counted once. */
  layersSize: number;
  images: Array<{
    id: string;
    repoTags: string[];
    /** Bytes of all its layers, and of those it shares with other images. */
    size: number;
    sharedSize: number;
    /** Containers using it (-1 when the engine did not count). */
    containers: number;
    labels: Record<string, string>;
    created: number;
  }>;
  containers: Array<{
    id: string;
    name: string;
    imageId: string;
    state: string;
    /** Bytes of its writable layer. */
    sizeRw: number;
    labels: Record<string, string>;
    /** The named volumes it mounts. */
    volumes: string[];
  }>;
  volumes: Array<{ name: string; size: number; refCount: number; labels: Record<string, string> }>;
}

export async function diskUsage(): Promise<DiskUsage> {
  const fromLists = (await engineInfo()).flavour.dfFromLists;
  const df = (await call('disk usage', async (docker) => {
    if (!fromLists) return docker.df();
    const [images, containers, volumes] = await Promise.all([
      docker.listImages(),
      docker.listContainers({ all: true, size: true }),
      docker.listVolumes(),
    ]);
    return { LayersSize: 0, Images: images, Containers: containers, Volumes: volumes.Volumes };
  })) as {
    LayersSize?: number;
    Images?: Array<{
      Id: string;
      RepoTags?: string[] | null;
      Size: number;
      SharedSize: number;
      Containers: number;
      Labels?: Record<string, string> | [] | null;
      Created: number;
    }> | null;
    Containers?: Array<{
      Id: string;
      Names?: string[];
      ImageID: string;
      State: string;
      SizeRw?: number;
      Labels?: Record<string, string> | null;
      Mounts?: Array<{ Type?: string; Name?: string }> | null;
    }> | null;
    Volumes?: Array<{
      Name: string;
      Labels?: Record<string, string> | null;
      UsageData?: { Size?: number; RefCount?: number } | null;
    }> | null;
  };
  return {
    layersSize: df.LayersSize ?? 0,
    images: (df.Images ?? []).map((i) => ({
      id: i.Id,
      // Podman names them in full (docker.io/sbx/claude:tag); Docker as they were tagged.
      repoTags: (i.RepoTags ?? [])
        .filter((t) => t !== '<none>:<none>')
        .map((t) => t.replace(/^(docker\.io|localhost)\/(library\/)?/, '')),
      size: i.Size,
      sharedSize: Math.max(0, i.SharedSize),
      containers: i.Containers,
      // Podman lists an image without labels with [].
      labels: Array.isArray(i.Labels) ? {} : (i.Labels ?? {}),
      created: i.Created,
    })),
    containers: (df.Containers ?? []).map((c) => ({
      id: c.Id,
      name: (c.Names?.[0] ?? c.Id).replace(/^\//, ''),
      imageId: c.ImageID,
      state: c.State,
      sizeRw: c.SizeRw ?? 0,
      labels: c.Labels ?? {},
      volumes: (c.Mounts ?? []).flatMap((m) => (m.Type === 'volume' && m.Name ? [m.Name] : [])),
    })),
    volumes: (df.Volumes ?? []).map((v) => ({
      name: v.Name,
      size: v.UsageData?.Size ?? -1,
      refCount: v.UsageData?.RefCount ?? -1,
      labels: v.Labels ?? {},
    })),
  };
}
