import { Args, Flags } from '@oclif/core';
import { agentNames, getAgent } from '../../src/agents/registry.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { ImageProgress } from '../../src/cli/progress.js';
import { ensureTemplate, templateSpecFor } from '../../src/sandbox/template-image.js';

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

  static override summary = 'Build template images.';

  async run(): Promise<TemplateBuildResult> {
    const { argv, flags } = await this.parse(TemplateBuild);
    const requested =
      (argv as string[]).length > 0 ? (argv as string[]) : agentNames().map((a) => getAgent(a).template);
    const names = [...new Set(requested)];
    const results: TemplateBuildResult['templates'] = [];
    for (const name of names) {
      const spec = agentNames().includes(name) ? await templateSpecFor(getAgent(name), undefined) : name;
      const image = await ensureTemplate(spec, process.cwd(), {
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
