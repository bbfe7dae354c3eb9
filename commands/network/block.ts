import { BaseCommand } from '../../src/cli/base-command.js';
import { resolveSandbox } from '../../src/cli/batch.js';
import { changePolicy, formatPolicy, hostArgs, type PolicyView, viewOf } from '../../src/network/live.js';

export default class NetworkBlock extends BaseCommand {
  static override args = hostArgs;

  static override description =
    'Block a host for a running sandbox, from its next request on: no restart of the sandbox or its agent. Block beats allow.';

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: "<%= config.bin %> <%= command.id %> . '*.example.com'",
      description: "Keep this folder's sandbox off example.com's subdomains.",
    },
  ];

  static override summary = 'Block a host for a running sandbox.';

  async run(): Promise<PolicyView> {
    const { args } = await this.parse(NetworkBlock);
    const policy = viewOf(await changePolicy(await resolveSandbox(args.sandbox), 'block', args.pattern));
    if (!this.jsonEnabled()) this.log(formatPolicy(policy));
    return policy;
  }
}
