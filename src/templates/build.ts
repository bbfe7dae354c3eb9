import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { CaCert } from '../config/tls-proxy.js';
import {
  buildImage,
  type ImageInfo,
  inspectImage,
  type ProgressEvent,
  pullImage,
  tagImage,
} from '../engine/images.js';
import { notFoundError, SbxError } from '../shared/errors.js';
import { LABEL } from '../shared/labels.js';
import {
  BUILTIN_DIR,
  contentHash,
  contextFiles,
  parentTemplates,
  repositoryOf,
  type TemplateSource,
} from './template.js';

type FolderSource = Extract<TemplateSource, { kind: 'folder' }>;

/** What the caller shows while images are built or pulled. */
export interface ImageReporter {
  start(what: string): void;
  event(event: ProgressEvent): void;
  /** Called once with the outcome; on failure the reporter shows the failing step's output. */
  end(ok: boolean): void;
}

export interface EnsureOptions {
  caCerts: CaCert[];
  labels: Record<string, string>;
  buildargs: Record<string, string>;
  nocache: boolean;
  reporter: ImageReporter;
  /**
   * The network a build's RUN steps use, made when a build is needed (never for an image found by its
   * tag): a dev container's builds run on a network of their own whose only way out is the egress
   * proxy, with its HTTP(S)_PROXY build args. Unset: the engine's default network.
   */
  buildNetwork?: (() => Promise<{ network: string; buildargs: Record<string, string> }>) | undefined;
}

/** The build args and networkmode of a build under `options` (see EnsureOptions.buildNetwork). */
export async function buildNetworkOf(
  options: EnsureOptions,
): Promise<{ buildargs: Record<string, string>; networkmode?: string }> {
  if (!options.buildNetwork) return { buildargs: options.buildargs };
  const net = await options.buildNetwork();
  return { buildargs: { ...options.buildargs, ...net.buildargs }, networkmode: net.network };
}

export interface TemplatePlan {
  source: FolderSource;
  hash: string;
  tag: string;
  parents: TemplatePlan[];
}

/** Where each template's image would come from, computed from files alone (no engine call). */
export function planTemplate(source: FolderSource, caCerts: CaCert[]): TemplatePlan {
  const dockerfile = readFileSync(join(source.dir, 'Dockerfile'), 'utf8');
  const parents = parentTemplates(dockerfile).map((name) => {
    const dir = join(BUILTIN_DIR, name);
    try {
      readFileSync(join(dir, 'Dockerfile'));
    } catch {
      throw notFoundError(
        `The template ${source.name} starts FROM sbx/${name}, which is not a built-in template.`,
        'Start FROM one of the built-in templates (sbx/base, sbx/claude, ...) or from a public image.',
      );
    }
    return planTemplate({ kind: 'folder', name, dir, builtin: true }, caCerts);
  });
  const certs = source.builtin && source.name === 'base' ? caCerts : [];
  const hash = contentHash(
    source.dir,
    certs,
    parents.map((p) => p.hash),
  );
  return { source, hash, tag: `${repositoryOf(source)}:${hash.slice(0, 12)}`, parents };
}

/**
 * Makes sure the image of a template exists and returns it. An unchanged template is found by its
 * content-hashed tag and never rebuilt; parents are built first and tagged :latest so that
 * `FROM sbx/NAME` resolves to the current one.
 */
export async function ensureTemplateImage(
  source: TemplateSource,
  options: EnsureOptions,
): Promise<{ ref: string; info: ImageInfo; built: boolean; hash?: string }> {
  if (source.kind === 'image')
    return { ref: source.ref, info: await ensurePulled(source.ref, options.reporter), built: false };
  const plan = planTemplate(source, options.caCerts);
  const built = await ensurePlan(plan, options, options.nocache);
  const info = await inspectImage(plan.tag);
  if (!info)
    throw new SbxError('buildFailed', `The image ${plan.tag} was built but the engine cannot find it.`);
  return { ref: plan.tag, info, built, hash: plan.hash };
}

async function ensurePlan(plan: TemplatePlan, options: EnsureOptions, nocache: boolean): Promise<boolean> {
  if (!nocache && (await inspectImage(plan.tag))) return false;
  for (const parent of plan.parents) {
    await ensurePlan(parent, options, false);
    await tagImage(parent.tag, `${repositoryOf(parent.source)}:latest`);
  }
  await build(plan, options, nocache);
  return true;
}

async function build(plan: TemplatePlan, options: EnsureOptions, nocache: boolean): Promise<void> {
  const { source } = plan;
  const certs = source.builtin && source.name === 'base' ? options.caCerts : [];
  const { default: tar } = await import('tar-fs');
  const context = tar.pack(source.dir, {
    entries: contextFiles(source.dir).files.map((f) => f.path),
    finalize: false,
    finish: (pack) => {
      for (const cert of certs) pack.entry({ name: `certs/${cert.name}`, mode: 0o644 }, cert.pem);
      pack.finalize();
    },
  });
  options.reporter.start(`template ${source.name} (${plan.tag})`);
  try {
    await buildImage({
      context: context as unknown as Readable,
      tags: [plan.tag, `${repositoryOf(source)}:latest`],
      labels: {
        ...options.labels,
        [LABEL.templateHash]: plan.hash,
        [LABEL.templateSource]: source.dir,
      },
      buildargs: options.buildargs,
      nocache,
      onEvent: (e) => options.reporter.event(e),
    });
  } catch (err) {
    options.reporter.end(false);
    if (err instanceof SbxError && err.kind === 'buildFailed') {
      throw new SbxError(
        'buildFailed',
        `Building the template ${source.name} from ${source.dir} failed: ${err.message}`,
        {
          cause: err,
          hint: 'The output of the failing step is shown above. Fix the Dockerfile, then run sbx again; steps that succeeded are cached.',
        },
      );
    }
    throw err;
  }
  options.reporter.end(true);
}

export async function ensurePulled(ref: string, reporter: ImageReporter): Promise<ImageInfo> {
  const present = await inspectImage(ref);
  if (present) return present;
  reporter.start(`pull ${ref}`);
  try {
    await pullImage(ref, (e) => reporter.event(e));
  } catch (err) {
    reporter.end(false);
    if (err instanceof SbxError) throw err;
    throw new SbxError(
      'imageUnavailable',
      `The image ${ref} is not on this engine and could not be pulled: ${(err as Error).message}`,
      {
        cause: err,
        hint: 'Check the name and tag, log in to its registry (docker login), or build it locally first.',
      },
    );
  }
  reporter.end(true);
  const info = await inspectImage(ref);
  if (!info)
    throw new SbxError('imageUnavailable', `The image ${ref} was pulled but the engine cannot find it.`);
  return info;
}
