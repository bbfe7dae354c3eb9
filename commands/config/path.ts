import { BaseCommand } from '../../src/cli/base-command.js';
import { configFile } from '../../src/config/config.js';

export default class ConfigPath extends BaseCommand {
  static override description =
    'Print the path of the configuration file (SBX_CONFIG_DIR moves it; custom templates live in the templates folder beside it).';

  static override examples = [
    { command: '$EDITOR $(<%= config.bin %> <%= command.id %>)', description: 'Edit it by hand.' },
  ];

  static override summary = 'Print the configuration file path.';

  static override toleratesBrokenConfig = true;

  async run(): Promise<void> {
    await this.parse(ConfigPath);
    this.log(configFile());
  }
}
