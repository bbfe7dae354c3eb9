/**
 * The image of a --docker sandbox: its template's (or dev container's) image with sbx's Docker
 * engine layer on top (templates/docker-engine: rootless Podman, the docker CLI and compose), built
 * on demand and tagged by a hash of the layer's files, the extra CA certificates and the image under
 * it, so agent images stay as they are and an unchanged layer is never rebuilt. The layer adds the
 * extra CAs to the system store, as the base template does: the inner engine pulls images through
 * the sandbox's proxy and trusts them even when the image under it was not built by sbx.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { CaCert } from '../config/tls-proxy.js';
import { buildImage, type ImageInfo, inspectImage } from '../engine/images.js';
import { SbxError } from '../shared/errors.js';
import { LABEL } from '../shared/labels.js';
import { buildNetworkOf, type EnsureOptions } from './build.js';
import { BUILTIN_DIR, contentHash, contextFiles } from './template.js';

/** Bumped when the way the layer is put on an image changes. */
const FORMAT = 'sbx-docker-layer-v1';

export const DOCKER_LAYER_DIR = join(BUILTIN_DIR, 'docker-engine');
export const DOCKER_LAYER_REPOSITORY = 'sbx/docker-engine';

/** The layer's tag for an image under it (by its ID) and the extra CAs, from files alone. */
export function dockerLayerTag(baseId: string, caCerts: CaCert[]): { tag: string; hash: string } {
  const hash = createHash('sha256')
    .update(`${FORMAT}\0${contentHash(DOCKER_LAYER_DIR, caCerts, [])}\0${baseId}`)
    .digest('hex');
  return { tag: `${DOCKER_LAYER_REPOSITORY}:${hash.slice(0, 12)}`, hash };
}

/** Makes sure the Docker engine layer exists on top of `base` and returns it. */
export async function ensureDockerLayer(
  base: { ref: string; info: ImageInfo },
  options: EnsureOptions,
): Promise<{ ref: string; info: ImageInfo; built: boolean }> {
  const { tag, hash } = dockerLayerTag(base.info.Id, options.caCerts);
  let built = false;
  if (options.nocache || !(await inspectImage(tag))) {
    const { default: tar } = await import('tar-fs');
    const context = tar.pack(DOCKER_LAYER_DIR, {
      entries: contextFiles(DOCKER_LAYER_DIR).files.map((f) => f.path),
      finalize: false,
      finish: (pack) => {
        for (const cert of options.caCerts) pack.entry({ name: `certs/${cert.name}`, mode: 0o644 }, cert.pem);
        pack.finalize();
      },
    });
    options.reporter.start(`Docker engine layer on ${base.ref} (${tag})`);
    try {
      const net = await buildNetworkOf(options);
      await buildImage({
        context: context as unknown as Readable,
        tags: [tag],
        labels: { ...options.labels, [LABEL.templateHash]: hash, [LABEL.templateSource]: DOCKER_LAYER_DIR },
        buildargs: { ...net.buildargs, SBX_FROM: base.ref },
        ...(net.networkmode ? { networkmode: net.networkmode } : {}),
        nocache: options.nocache,
        dockerfile: 'Dockerfile.layer',
        onEvent: (e) => options.reporter.event(e),
      });
    } catch (err) {
      options.reporter.end(false);
      if (err instanceof SbxError && err.kind === 'buildFailed')
        throw new SbxError(
          'buildFailed',
          `Adding the Docker engine (Podman, the docker CLI and compose) to ${base.ref} failed: ${err.message}`,
          {
            cause: err,
            hint: "The output of the failing step is shown above. The layer installs Debian packages with apt-get through the host's proxy settings: check that a Debian mirror is reachable, then run again; nothing was created.",
          },
        );
      throw err;
    }
    options.reporter.end(true);
    built = true;
  }
  const info = await inspectImage(tag);
  if (!info) throw new SbxError('buildFailed', `The image ${tag} was built but the engine cannot find it.`);
  return { ref: tag, info, built };
}
