import { BaseCommand } from '../../src/cli/base-command.js';
import { table } from '../../src/cli/render.js';
import type { SecretView } from '../../src/config/secrets.js';
import { listSecrets } from '../../src/sandbox/secrets.js';

export default class SecretLs extends BaseCommand {
  static override description =
    'List the secrets sbx holds for sandboxes: name, hosts, header and where the value comes from. Never a value.';

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: 'What sandboxes get injected.' },
  ];

  static override summary = 'List stored secrets (never their values).';

  async run(): Promise<SecretView[]> {
    await this.parse(SecretLs);
    const secrets = listSecrets();
    if (!this.jsonEnabled())
      this.log(
        table([
          ['NAME', 'HOSTS', 'HEADER', 'FORMAT', 'VALUE FROM'],
          ...secrets.map((s) => [s.name, s.hosts.join(' '), s.header, s.format, s.source]),
        ]),
      );
    return secrets;
  }
}
