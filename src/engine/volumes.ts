import type { Readable } from 'node:stream';
import { call, callOrMissing, track } from './call.js';
import { query, upload } from './http.js';

export interface VolumeInfo {
  name: string;
  labels: Record<string, string>;
  createdAt: string | undefined;
}

/** Creates a named volume, or returns the existing one of that name (the engine makes this idempotent). */
export async function ensureVolume(name: string, labels: Record<string, string>): Promise<void> {
  await call(`create volume ${name}`, (docker) => docker.createVolume({ Name: name, Labels: labels }));
}

export async function listVolumes(labels: string[]): Promise<VolumeInfo[]> {
  const { Volumes } = await call(`list volumes ${labels.join(',')}`, (docker) =>
    docker.listVolumes({ filters: { label: labels } }),
  );
  return (Volumes ?? []).map((v) => ({
    name: v.Name,
    labels: v.Labels ?? {},
    createdAt: (v as { CreatedAt?: string }).CreatedAt,
  }));
}

/** Disk use of each volume, by name (one `system df` call; the engine may not know it: undefined). */
export async function volumeSizes(): Promise<Map<string, number>> {
  const df = (await call('disk usage', (docker) => docker.df())) as {
    Volumes?: Array<{ Name: string; UsageData?: { Size?: number } }>;
  };
  return new Map((df.Volumes ?? []).map((v) => [v.Name, v.UsageData?.Size ?? -1]));
}

/** Removes a volume; already gone is success. A volume a container still mounts is refused (409). */
export async function removeVolume(name: string): Promise<void> {
  await callOrMissing(`remove volume ${name}`, (docker) => docker.getVolume(name).remove());
}

/** Extracts a tar archive into a container (running or not) at `path`, volumes included. */
export async function putArchive(containerId: string, path: string, archive: Readable): Promise<void> {
  await track(`copy files into ${containerId.slice(0, 12)}:${path}`, () =>
    upload(
      'PUT',
      `/containers/${encodeURIComponent(containerId)}/archive?${query({ path })}`,
      archive,
      'application/x-tar',
    ),
  );
}
