import { join } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { agentNames, getAgent } from '../../src/agents/registry.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { ImageProgress } from '../../src/cli/progress.js';
import { configDir, readConfig } from '../../src/config/config.js';
import { extraCaCerts, proxyEnv } from '../../src/config/tls-proxy.js';
import { extraLabels } from '../../src/sandbox/identity.js';
import { ensureTemplateImage } from '../../src/templates/build.js';
import { resolveTemplate } from '../../src/templates/template.js';

export interface TemplateBuildResult {
  templates: Array<{ template: string; image: string; hash?: string; built: boolean }>;
}

export default class TemplateBuild extends BaseCommand {
  static override args = {
    templates: Args.string({
      description: "Templates to build: names, folders, or agents (default: every agent's template).",
      ignoreStdin: true,
    }),
  };

  static override description =
    'Build template images now, so the next sbx run starts at once. Unchanged templates are found by their content hash and not rebuilt.';

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> claude',
      description: 'Build the Claude Code template (and the base it starts from).',
    },
    {
      command: '<%= config.bin %> <%= command.id %> ./my-template --no-cache',
      description: 'Rebuild a custom template from scratch.',
    },
  ];

  static override flags = {
    'no-cache': Flags.boolean({
      description: "Rebuild the named templates without the engine's layer cache.",
    }),
  };

  static override strict = false;

  async run(): Promise<TemplateBuildResult> {
    const { argv, flags } = await this.parse(TemplateBuild);
    const config = await readConfig();
    const requested =
      (argv as string[]).length > 0 ? (argv as string[]) : agentNames().map((a) => getAgent(a).template);
    const names = [...new Set(requested)];
    const results: TemplateBuildResult['templates'] = [];
    for (const name of names) {
      const spec = agentNames().includes(name) ? (config.templates?.[name] ?? getAgent(name).template) : name;
      const source = resolveTemplate(spec, process.cwd(), join(configDir(), 'templates'));
      const image = await ensureTemplateImage(source, {
        caCerts: extraCaCerts(config.caCerts),
        labels: extraLabels(),
        buildargs: proxyEnv(),
        nocache: flags['no-cache'],
        reporter: new ImageProgress(),
      });
      results.push({
        template: spec,
        image: image.ref,
        ...(image.hash ? { hash: image.hash } : {}),
        built: image.built,
      });
      if (!this.jsonEnabled()) this.log(`${spec}\t${image.ref}\t${image.built ? 'built' : 'up to date'}`);
    }
    return { templates: results };
  }
}
