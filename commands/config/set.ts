import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { configKey, KEYS, parseConfigValue, setConfig } from '../../src/config/config.js';

export default class ConfigSet extends BaseCommand {
  static override args = {
    key: Args.string({ description: 'The key (see `sbx config list`).', required: true, ignoreStdin: true }),
    value: Args.string({
      description: 'The value; a list key takes several.',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override description =
    `Set a configuration value. The value is checked first; an unknown key or a bad value is refused with the valid choices and nothing is written.

Keys:
${KEYS.map((k) => `  ${k.key}${k.list ? ' (list)' : ''}: ${k.description}`).join('\n')}`;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> limits.memory 8g',
      description: 'Give new sandboxes 8 GiB.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> templates.claude ~/templates/claude-go',
      description: 'Default template of Claude Code sandboxes.',
    },
    {
      command:
        '<%= config.bin %> <%= command.id %> env GITHUB_TOKEN NPM_CONFIG_REGISTRY=https://npm.example.com',
      description: 'Variables for every sandbox (a list).',
    },
  ];

  static override strict = false;

  static override summary = 'Set a configuration value.';

  async run(): Promise<void> {
    const { argv } = await this.parse(ConfigSet);
    const [key, ...values] = argv as string[];
    const def = configKey(key!);
    await setConfig(def.key, parseConfigValue(def, values));
  }
}
