import { join } from 'node:path';
import type { AgentSpec } from '../agents/registry.js';
import { configDir, readConfig } from '../config/config.js';
import { extraCaCerts, proxyEnv } from '../config/tls-proxy.js';
import { ensureTemplateImage, type ImageReporter } from '../templates/build.js';
import { resolveTemplate } from '../templates/template.js';
import { extraLabels } from './identity.js';

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
  const source = resolveTemplate(spec, workspace, join(configDir(), 'templates'));
  return ensureTemplateImage(source, {
    caCerts: extraCaCerts(config.caCerts),
    labels: extraLabels(),
    buildargs: proxyEnv(),
    ...options,
  });
}
