/**
 * Dev container features from registries (ghcr.io/devcontainers/features/node:1): fetched on the
 * host through the OCI distribution API, kept in sbx's cache by the digest of their layer, then
 * installed like a local feature. Which digest a reference last had is kept too, so listing images
 * works offline.
 */

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fetchArtifactLayer, isLoopbackRegistry } from '../engine/registry.js';
import { SbxError } from '../shared/errors.js';
import {
  type Devcontainer,
  type FeatureRef,
  featureContainerEnv,
  featureEnv,
  type LocalFeature,
} from './devcontainer.js';

/** The media type of a feature's layer, as the dev container spec publishes it. */
const FEATURE_LAYER = 'application/vnd.devcontainers.layer.v1+tar';

const refText = (ref: FeatureRef) =>
  `${ref.registry}/${ref.repository}${ref.reference.startsWith('sha256:') ? '@' : ':'}${ref.reference}`;

const folders = (cache: string) => ({
  byDigest: (digest: string) => join(cache, 'features', digest.replace(':', '-')),
  byRef: (ref: FeatureRef) =>
    join(cache, 'features', 'refs', createHash('sha256').update(refText(ref)).digest('hex')),
});

/** A registry feature filled in from a cached folder. */
function filled(feature: LocalFeature, dir: string): LocalFeature {
  const containerEnv = featureContainerEnv(dir);
  return {
    id: feature.id,
    dir,
    env: featureEnv(dir, feature.options ?? {}),
    ...(Object.keys(containerEnv).length > 0 ? { containerEnv } : {}),
    ...(feature.ref ? { ref: feature.ref } : {}),
  };
}

/**
 * The dev container with its registry features fetched (or found in the cache by their layer's
 * digest): each gets its folder and its options. A feature that cannot be fetched is an error naming
 * it; nothing is built.
 */
export async function fetchFeatures(
  dc: Devcontainer,
  options: { cacheDir: string; caCerts: string[] },
): Promise<Devcontainer> {
  if (!dc.features.some((f) => f.ref)) return dc;
  const at = folders(options.cacheDir);
  const features: LocalFeature[] = [];
  for (const feature of dc.features) {
    if (!feature.ref) {
      features.push(feature);
      continue;
    }
    const ref = feature.ref;
    let digest: string;
    try {
      const layer = await fetchArtifactLayer(ref, {
        caCerts: options.caCerts,
        mediaType: FEATURE_LAYER,
        have: (d) => existsSync(join(at.byDigest(d), 'install.sh')),
      });
      digest = layer.digest;
      const dir = at.byDigest(digest);
      if (layer.tar.length > 0) await unpack(layer.tar, dir);
      if (!existsSync(join(dir, 'install.sh')))
        throw new Error(`its layer ${digest} holds no install.sh (is it a dev container feature?)`);
      mkdirSync(join(at.byRef(ref), '..'), { recursive: true });
      writeFileSync(at.byRef(ref), digest);
    } catch (err) {
      throw new SbxError(
        'imageUnavailable',
        `The dev container's feature ${feature.id} could not be fetched from ${ref.registry}: ${(err as Error).message}${causeOf(err)}; nothing was created.`,
        {
          cause: err,
          hint: `Check that ${ref.registry} answers from this machine (sbx uses HTTPS_PROXY/NO_PROXY and caCerts${isLoopbackRegistry(ref.registry) ? '' : '; plain HTTP only for localhost'}), or vendor the feature: put its folder (install.sh, devcontainer-feature.json) next to the devcontainer.json and name it "./folder" under features.`,
        },
      );
    }
    features.push(filled(feature, at.byDigest(digest)));
  }
  return { ...dc, features };
}

/** Registry features filled in from the cache only (for listing images offline); unknown ones stay as they are. */
export function cachedFeatures(dc: Devcontainer, cacheDir: string): Devcontainer {
  const at = folders(cacheDir);
  return {
    ...dc,
    features: dc.features.map((f) => {
      if (!f.ref || !existsSync(at.byRef(f.ref))) return f;
      const dir = at.byDigest(readFileSync(at.byRef(f.ref), 'utf8').trim());
      return existsSync(join(dir, 'install.sh')) ? filled(f, dir) : f;
    }),
  };
}

/** fetch's own message is "fetch failed": the reason (ECONNREFUSED…) is in its cause. */
function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause ? ` (${cause.code ?? cause.message})` : '';
}

/** Unpacks a feature's tar into dir, atomically (a folder beside it, then renamed). */
async function unpack(tar: Buffer, dir: string): Promise<void> {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  const { default: tarFs } = await import('tar-fs');
  try {
    // tar-fs refuses entries that would land outside tmp; links are skipped, so that the build
    // context (which reads through them) can never take a host file into the image.
    await pipeline(
      Readable.from(tar),
      tarFs.extract(tmp, {
        ignore: (_name, header) => header?.type !== 'file' && header?.type !== 'directory',
      }),
    );
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
