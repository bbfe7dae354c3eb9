import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AGENTS, type AgentSpec } from '../agents/registry.js';
import { cacheDir, configDir, readConfig } from '../config/config.js';
import { type CaCert, extraCaCerts, proxyEnv } from '../config/tls-proxy.js';
import { listContainers } from '../engine/containers.js';
import { inspectImage, listImages, listLabelledImages, removeImage } from '../engine/images.js';
import { SbxError, usageError } from '../shared/errors.js';
import { extraLabels, LABEL } from '../shared/labels.js';
import { ensureTemplateImage, type ImageReporter, planTemplate } from '../templates/build.js';
import { type Devcontainer, findDevcontainer, loadDevcontainer } from '../templates/devcontainer.js';
import { type DevcontainerPlan, planDevcontainer, projectHash } from '../templates/devcontainer-build.js';
import { cachedFeatures } from '../templates/features.js';
import {
  BUILTIN_DIR,
  builtinNames,
  repositoryOf,
  resolveTemplate,
  type TemplateSource,
} from '../templates/template.js';
import { SAVE_NAME, savedImageRef } from './save.js';

/** The template an agent's new sandbox starts from: --template, else the config's default, else its own. */
export async function templateSpecFor(agent: AgentSpec, explicit: string | undefined): Promise<string> {
  return explicit ?? (await readConfig()).templates?.[agent.name] ?? agent.template;
}

/**
 * Resolves a template as the user named it (from the workspace's point of view) and makes sure its
 * image exists, with the configured CA certificates, sbx's extra labels and the host's proxy settings.
 */
export async function ensureTemplate(
  spec: string,
  workspace: string,
  options: { nocache: boolean; reporter: ImageReporter },
): ReturnType<typeof ensureTemplateImage> {
  const config = await readConfig();
  const source = await templateSource(spec, workspace);
  return ensureTemplateImage(source, {
    caCerts: extraCaCerts(config.caCerts),
    labels: extraLabels(),
    buildargs: proxyEnv(),
    ...options,
  });
}

const templateSource = async (spec: string, workspace: string): Promise<TemplateSource> =>
  (await savedTemplate(spec, workspace)) ?? resolveTemplate(spec, workspace, join(configDir(), 'templates'));

/**
 * The image of a folder template when it is built for its current files: what ensureTemplate would
 * return without building. Undefined when it would build, or for an image template (which it may pull).
 */
export async function builtTemplate(
  spec: string,
  workspace: string,
): Promise<{ ref: string; hash: string } | undefined> {
  const source = await templateSource(spec, workspace);
  if (source.kind !== 'folder') return undefined;
  const plan = planTemplate(source, extraCaCerts((await readConfig()).caCerts));
  return (await inspectImage(plan.tag)) ? { ref: plan.tag, hash: plan.hash } : undefined;
}

/**
 * A template saved with `sbx save` when `spec` names one and no template folder has that name (a
 * folder of that name, made later, wins).
 */
async function savedTemplate(spec: string, workspace: string): Promise<TemplateSource | undefined> {
  if (!SAVE_NAME.test(spec)) return undefined;
  try {
    resolveTemplate(spec, workspace, join(configDir(), 'templates'));
    return undefined;
  } catch (err) {
    if (!(err instanceof SbxError && err.kind === 'notFound')) throw err;
  }
  const ref = savedImageRef(spec);
  return (await inspectImage(ref)) ? { kind: 'image', ref } : undefined;
}

export interface TemplateStatus {
  name: string;
  /** built-in, workspace (.sbx/templates), user (the config folder's templates), saved (sbx save), or the workspace's dev container. */
  origin: 'built-in' | 'workspace' | 'user' | 'saved' | 'devcontainer';
  dir: string;
  /** The image the current files build: repository:content-hash. */
  image: string;
  hash: string;
  /** built: that image exists; stale: only images of older contents exist; absent: none. */
  state: 'built' | 'stale' | 'absent';
  /** Which agents it can launch (its FROM chain's dev.sbx.agents label), when built. */
  agents: string[];
}

/** Every template sbx can see from this workspace, with its current image and whether it is built. */
export async function templateStatuses(workspace: string): Promise<TemplateStatus[]> {
  const config = await readConfig();
  const caCerts = extraCaCerts(config.caCerts);
  const userDir = join(configDir(), 'templates');
  const sources: Array<{ name: string; dir: string; origin: TemplateStatus['origin'] }> = [
    ...builtinNames().map((name) => ({ name, dir: join(BUILTIN_DIR, name), origin: 'built-in' as const })),
    ...folderTemplates(join(workspace, '.sbx', 'templates')).map((t) => ({
      ...t,
      origin: 'workspace' as const,
    })),
    ...folderTemplates(userDir).map((t) => ({ ...t, origin: 'user' as const })),
  ];
  const plans = sources.map((s) =>
    planTemplate({ kind: 'folder', name: s.name, dir: s.dir, builtin: s.origin === 'built-in' }, caCerts),
  );
  const repos = plans.map((p) => p.tag.slice(0, p.tag.lastIndexOf(':')));
  const [images, saved] = await Promise.all([
    listImages([...new Set(repos)]),
    listLabelledImages(LABEL.saved),
  ]);
  const savedStatuses = saved.flatMap((img): TemplateStatus[] => {
    const name = img.Labels?.[LABEL.saved];
    return name
      ? [
          {
            name,
            origin: 'saved',
            dir: '-',
            image: savedImageRef(name),
            hash: img.Id,
            state: 'built',
            agents: (img.Labels?.[LABEL.agents] ?? '').split(',').filter(Boolean),
          },
        ]
      : [];
  });
  const folders = sources.map((s, i): TemplateStatus => {
    const plan = plans[i]!;
    const current = images.find((img) => img.RepoTags?.includes(plan.tag));
    const older = images.some((img) => img.RepoTags?.some((t) => t.startsWith(`${repos[i]}:`)));
    return {
      ...s,
      image: plan.tag,
      hash: plan.hash,
      state: current ? 'built' : older ? 'stale' : 'absent',
      agents: (current?.Labels?.[LABEL.agents] ?? '').split(',').filter(Boolean),
    };
  });
  return [
    ...folders,
    ...savedStatuses.filter((t) => !folders.some((f) => f.name === t.name)),
    ...(await devcontainerStatuses(workspace, caCerts)),
  ];
}

/**
 * The workspace's dev container images: one row per agent layer built from its current files, or one
 * row (for the shell) saying whether older ones exist.
 */
async function devcontainerStatuses(workspace: string, caCerts: CaCert[]): Promise<TemplateStatus[]> {
  let file: ReturnType<typeof findDevcontainer>;
  let dc: Devcontainer;
  try {
    file = findDevcontainer(workspace);
    if (!file) return [];
    dc = cachedFeatures(
      loadDevcontainer(file, {
        localEnv: process.env,
        localWorkspaceFolder: workspace,
        containerWorkspaceFolder: workspace,
      }),
      cacheDir(),
    );
  } catch (err) {
    // A dev container sbx cannot read says so when a sandbox is made from it; the list still shows the rest.
    if (err instanceof SbxError) return [];
    throw err;
  }
  const project = projectHash(dc, workspace);
  const projectId = project.build ? '' : ((await inspectImage(project.tag))?.Id ?? '');
  const plans = [...new Set(['base', ...AGENTS.map((a) => a.template)])].map((t) =>
    planDevcontainer(dc, workspace, t, caCerts, project, projectId),
  );
  const images = await listImages([plans[0]!.repository]);
  const row = (plan: DevcontainerPlan, state: TemplateStatus['state']): TemplateStatus => {
    const current = images.find((img) => img.RepoTags?.includes(plan.tag));
    return {
      name: `devcontainer (${plan.agentTemplate})`,
      origin: 'devcontainer',
      dir: file.path,
      image: plan.tag,
      hash: plan.hash,
      state,
      agents: (current?.Labels?.[LABEL.agents] ?? '').split(',').filter(Boolean),
    };
  };
  const built = plans.filter((p) => images.some((img) => img.RepoTags?.includes(p.tag)));
  if (built.length > 0) return built.map((p) => row(p, 'built'));
  return [row(plans[0]!, images.length > 0 ? 'stale' : 'absent')];
}

function folderTemplates(dir: string): Array<{ name: string; dir: string }> {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'Dockerfile')))
    .map((e) => ({ name: e.name, dir: join(dir, e.name) }));
}

/**
 * Removes every image of a template (all its content-hash tags and :latest); its folder is never
 * touched. An image a sandbox still uses is refused by the engine, and reported with the sandbox.
 */
export async function removeTemplateImages(spec: string, workspace: string): Promise<string[]> {
  const saved = await savedTemplate(spec, workspace);
  const source = saved ?? resolveTemplate(spec, workspace, join(configDir(), 'templates'));
  if (saved?.kind === 'image') {
    const image = await inspectImage(saved.ref);
    const users = image ? (await listContainers([])).filter((c) => c.ImageID === image.Id) : [];
    if (users.length > 0)
      throw new SbxError(
        'conflict',
        `The saved template ${spec} is in use by ${users.map((c) => c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12)).join(', ')}; nothing was removed.`,
        { hint: 'Remove those sandboxes first (sbx rm; workspace files stay), then remove the template.' },
      );
    await removeImage(saved.ref);
    return [saved.ref];
  }
  if (source.kind === 'image') {
    throw usageError(
      `${spec} is an image reference, not an sbx template.`,
      `Remove images sbx did not build with \`docker rmi ${spec}\`.`,
    );
  }
  const repo = repositoryOf(source);
  const images = await listImages([repo]);
  const ids = new Set(images.map((img) => img.Id));
  const users = (await listContainers([])).filter((c) => ids.has(c.ImageID));
  if (users.length > 0) {
    throw new SbxError(
      'conflict',
      `The template ${spec} has images in use by ${users.map((c) => c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12)).join(', ')}; nothing was removed.`,
      { hint: 'Remove those sandboxes first (sbx rm; workspace files stay), then remove the template.' },
    );
  }
  const tags = images.flatMap((img) => (img.RepoTags ?? []).filter((t) => t.startsWith(`${repo}:`)));
  for (const tag of tags) await removeImage(tag);
  return tags;
}
