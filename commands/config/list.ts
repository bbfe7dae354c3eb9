import { BaseCommand } from '../../src/cli/base-command.js';
import { table } from '../../src/cli/render.js';
import { flatten, KEYS, readConfig } from '../../src/config/config.js';

export interface ConfigEntry {
  key: string;
  value: unknown;
  default: string;
  description: string;
}

export default class ConfigList extends BaseCommand {
  static override description = 'List every configuration key: its value, or the default that applies.';

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: 'What is set, and what is not.' },
  ];

  static override summary = 'List configuration keys and values.';

  async run(): Promise<ConfigEntry[]> {
    await this.parse(ConfigList);
    const set = new Map(flatten(await readConfig()));
    const entries = KEYS.map((k) => ({
      key: k.key,
      value: set.get(k.key) ?? null,
      default: k.fallback,
      description: k.description,
    }));
    if (!this.jsonEnabled())
      this.log(
        table([
          ['KEY', 'VALUE'],
          ...entries.map((e) => [
            e.key,
            e.value === null ? `(default: ${e.default})` : [e.value].flat().join(' '),
          ]),
        ]),
      );
    return entries;
  }
}
