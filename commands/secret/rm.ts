import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import type { SecretView } from '../../src/config/secrets.js';
import { deleteSecret } from '../../src/sandbox/secrets.js';

export default class SecretRm extends BaseCommand {
  static override args = {
    name: Args.string({ description: 'The secret to remove.', required: true, ignoreStdin: true }),
  };

  static override description =
    'Remove a stored secret. Sandboxes made from now on do not get it; one that exists stops getting it at its next start.';

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %> GH_TOKEN', description: 'Forget the GitHub token.' },
  ];

  static override summary = 'Remove a stored secret.';

  async run(): Promise<SecretView> {
    const { args } = await this.parse(SecretRm);
    const removed = deleteSecret(args.name);
    if (!this.jsonEnabled()) this.log(removed.name);
    return removed;
  }
}
