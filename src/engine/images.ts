import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { SbxError } from '../shared/errors.js';
import { call, callOrMissing, orMissing, track } from './call.js';
import { engine } from './connection.js';
import { api } from './http.js';

export type ImageInfo = Docker.ImageInspectInfo;

/** One event of a build or pull progress stream, as the engine sends it. */
export interface ProgressEvent {
  stream?: string;
  status?: string;
  progress?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

/**
 * The image by reference or id, or undefined when the engine has none. Spoken over HTTP directly
 * (http.ts): the unchanged-template check and `sbx ls --json` never load dockerode for it.
 */
export function inspectImage(ref: string): Promise<ImageInfo | undefined> {
  // A reference's '/', ':' and '@' stay as they are in the path, as the engine's router expects.
  const path = encodeURIComponent(ref).replace(/%2F/g, '/').replace(/%3A/g, ':').replace(/%40/g, '@');
  return orMissing(track(`inspect image ${ref}`, () => api<ImageInfo>('GET', `/images/${path}/json`)));
}

export interface BuildRequest {
  context: Readable;
  tags: string[];
  labels: Record<string, string>;
  buildargs: Record<string, string>;
  nocache: boolean;
  /** The Dockerfile's path in the context (default: Dockerfile). */
  dockerfile?: string;
  /** The stage to build (a multi-stage Dockerfile's target). */
  target?: string;
  /** The network of the RUN steps (none, or a network's name); unset: the engine's default. */
  networkmode?: string;
  onEvent: (event: ProgressEvent) => void;
}

/**
 * Builds an image and returns its id. Fails on any error event in the stream, also when the stream
 * itself ends cleanly (followProgress alone would report success).
 */
export async function buildImage(req: BuildRequest): Promise<string> {
  const [tag, ...more] = req.tags;
  const stream = await call(`build image ${tag}`, (docker) =>
    docker.buildImage(req.context, {
      t: tag,
      labels: req.labels,
      buildargs: req.buildargs,
      nocache: req.nocache,
      rm: true,
      forcerm: true,
      ...(req.dockerfile ? { dockerfile: req.dockerfile } : {}),
      ...(req.target ? { target: req.target } : {}),
      ...(req.networkmode ? { networkmode: req.networkmode } : {}),
    }),
  );
  const events = await follow(stream, req.onEvent);
  const failure = events.find((e) => e.error || e.errorDetail);
  if (failure) {
    throw new SbxError(
      'buildFailed',
      (failure.errorDetail?.message ?? failure.error ?? 'unknown build error').trim(),
    );
  }
  const id = events.findLast((e) => e.aux?.ID)?.aux?.ID ?? (await inspectImage(tag!))?.Id;
  if (!id) throw new SbxError('buildFailed', `the engine reported no image for ${tag}`);
  for (const extra of more) await tagImage(id, extra);
  return id;
}

/** Pulls an image; fails on error events like buildImage. */
export async function pullImage(ref: string, onEvent: (event: ProgressEvent) => void): Promise<void> {
  const stream = await call(`pull image ${ref}`, (docker) => docker.pull(ref));
  const events = await follow(stream, onEvent);
  const failure = events.find((e) => e.error || e.errorDetail);
  if (failure) throw new Error(failure.errorDetail?.message ?? failure.error);
}

export async function tagImage(id: string, ref: string): Promise<void> {
  const colon = ref.lastIndexOf(':');
  const [repo, tag] =
    colon > ref.lastIndexOf('/') ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  await call(`tag image ${id.slice(7, 19)} as ${ref}`, (docker) => docker.getImage(id).tag({ repo, tag }));
}

async function follow(
  stream: NodeJS.ReadableStream,
  onEvent: (e: ProgressEvent) => void,
): Promise<ProgressEvent[]> {
  const { docker } = await engine();
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: ProgressEvent[]) => (err ? reject(err) : resolve(output)),
      onEvent,
    );
  });
}

/** Images whose repository is one of `repositories` (every tag), with their tags and labels. */
export async function listImages(repositories: string[]): Promise<Docker.ImageInfo[]> {
  if (repositories.length === 0) return [];
  // All images, filtered here: Podman ANDs several reference filters where Docker ORs them.
  const images = await call(`list images ${repositories.join(',')}`, (docker) => docker.listImages());
  const wanted = new Set(repositories);
  return images.flatMap((img) => {
    // Podman names them in full (docker.io/sbx/claude:tag); Docker as they were tagged (sbx/claude:tag).
    const tags = (img.RepoTags ?? []).map((t) => t.replace(/^docker\.io\/(library\/)?/, ''));
    return tags.some((t) => wanted.has(t.slice(0, t.lastIndexOf(':')))) ? [{ ...img, RepoTags: tags }] : [];
  });
}

/**
 * Removes one image reference (a tag, or an id with all its tags). Already gone is success; an
 * image a container still uses is refused by the engine (409), which the caller reports.
 */
export async function removeImage(ref: string): Promise<void> {
  await callOrMissing(`remove image ${ref}`, (docker) => docker.getImage(ref).remove({ noprune: false }));
}

/**
 * The layers of an image, oldest first, as keys that are equal exactly when two images share that
 * layer (and everything below it), with each layer's own size: from the image's history, whose
 * entries name the intermediate image where the engine knows it. An image gone meanwhile has none.
 */
export async function imageLayers(id: string): Promise<Array<{ key: string; size: number }>> {
  // An image removed since it was listed (another sbx's prune, a docker rmi) has no layers left.
  const history = ((await callOrMissing(`history of image ${id.slice(7, 19)}`, (docker) =>
    docker.getImage(id).history(),
  )) ?? []) as Array<{ Id: string; Created: number; CreatedBy: string; Size: number }>;
  const { createHash } = await import('node:crypto');
  let below = '';
  return history.reverse().map((h) => {
    below =
      h.Id && h.Id !== '<missing>'
        ? h.Id
        : createHash('sha256').update(`${below}\0${h.Created}\0${h.CreatedBy}\0${h.Size}`).digest('hex');
    return { key: below, size: h.Size };
  });
}

/** Images carrying a label (any value). */
export function listLabelledImages(label: string): Promise<Docker.ImageInfo[]> {
  return call(`list images ${label}`, (docker) => docker.listImages({ filters: { label: [label] } }));
}
