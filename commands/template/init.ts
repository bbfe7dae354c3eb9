import { Args, Flags } from '@oclif/core';
import { agentNames, getAgent } from '../../src/agents/registry.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { configDir } from '../../src/config/config.js';
import { scaffoldTemplate } from '../../src/templates/scaffold.js';

export default class TemplateInit extends BaseCommand {
  static override args = {
    name: Args.string({
      description: 'A name (made in your templates folder) or a folder path (./NAME).',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override description =
    "Scaffold a custom template: a folder whose Dockerfile starts FROM an agent's template, with comments on what to add. Nothing that exists is overwritten.";

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> claude-go --agent claude',
      description: 'Claude Code plus your tools, in your templates folder.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> ./.sbx/templates/ci',
      description: 'A template kept in this project (.sbx/templates is looked in first).',
    },
  ];

  static override flags = {
    agent: Flags.string({ description: 'The agent it is for.', default: 'claude', options: agentNames() }),
  };

  static override summary = 'Scaffold a custom template.';

  async run(): Promise<{ name: string; dir: string }> {
    const { args, flags } = await this.parse(TemplateInit);
    const created = scaffoldTemplate(args.name, getAgent(flags.agent), configDir());
    if (!this.jsonEnabled()) {
      this.log(created.dir);
      process.stderr.write(
        `sbx: edit ${created.dir}/Dockerfile, then: sbx run ${flags.agent} --template ${created.name}\n`,
      );
    }
    return created;
  }
}
