import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { configKey, flatten, readConfig } from '../../src/config/config.js';

export default class ConfigGet extends BaseCommand {
  static override args = {
    key: Args.string({ description: 'The key (see `sbx config list`).', required: true, ignoreStdin: true }),
  };

  static override description =
    'Print a configuration value (a list: one item per line). An unset key prints nothing and exits 0; --json gives null.';

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> limits.memory',
      description: 'The memory limit of new sandboxes.',
    },
  ];

  static override summary = 'Print a configuration value.';

  async run(): Promise<unknown> {
    const { args } = await this.parse(ConfigGet);
    const def = configKey(args.key);
    const value = flatten(await readConfig()).find(([k]) => k === def.key)?.[1] ?? null;
    if (!this.jsonEnabled() && value !== null) for (const item of [value].flat()) this.log(String(item));
    return value;
  }
}
