import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { configKey, unsetConfig } from '../../src/config/config.js';

export default class ConfigUnset extends BaseCommand {
  static override args = {
    key: Args.string({ description: 'The key (see `sbx config list`).', required: true, ignoreStdin: true }),
  };

  static override description = 'Remove a configuration value, so its default applies again.';

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> limits.memory',
      description: 'Back to the default memory limit.',
    },
  ];

  static override summary = 'Remove a configuration value.';

  async run(): Promise<void> {
    const { args } = await this.parse(ConfigUnset);
    await unsetConfig(configKey(args.key).key);
  }
}
