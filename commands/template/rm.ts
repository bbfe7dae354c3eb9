import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { removeTemplateImages } from '../../src/sandbox/template-image.js';

export default class TemplateRm extends BaseCommand {
  static override args = {
    template: Args.string({
      description: 'The template: a name or a folder.',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override description =
    "Remove a template's images (every content-hash tag). Its folder is never touched; the next use builds it again. Refused while a sandbox uses one of them.";

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> my-go',
      description: 'Free the disk space of a custom template.',
    },
  ];

  static override summary = "Remove a template's images.";

  async run(): Promise<{ removed: string[] }> {
    const { args } = await this.parse(TemplateRm);
    const removed = await removeTemplateImages(args.template, process.cwd());
    if (!this.jsonEnabled()) for (const tag of removed) this.log(`removed ${tag}`);
    if (removed.length === 0) this.warn(`the template ${args.template} has no images.`);
    return { removed };
  }
}
