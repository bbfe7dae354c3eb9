import { BaseCommand } from '../../src/cli/base-command.js';
import { table } from '../../src/cli/render.js';
import { type TemplateStatus, templateStatuses } from '../../src/sandbox/template-image.js';

export default class TemplateLs extends BaseCommand {
  static override description =
    `List templates: built-in ones, this workspace's (.sbx/templates), yours (the templates folder beside \`sbx config path\`) and those saved from sandboxes (\`sbx save\`).

STATE is built (the image of the current files exists), stale (only images of older files exist: the next use rebuilds) or absent.`;

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %>',
      description: 'Every template and whether it is built.',
    },
  ];

  static override summary = 'List templates and whether they are built.';

  async run(): Promise<TemplateStatus[]> {
    await this.parse(TemplateLs);
    const templates = await templateStatuses(process.cwd());
    if (!this.jsonEnabled())
      this.log(
        table([
          ['TEMPLATE', 'ORIGIN', 'STATE', 'IMAGE', 'FOLDER'],
          ...templates.map((t) => [t.name, t.origin, t.state, t.image, t.dir]),
        ]),
      );
    return templates;
  }
}
