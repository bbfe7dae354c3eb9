import { hostArgs } from '../../src/cli/args.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { formatPolicy } from '../../src/cli/render.js';
import { type PolicyView, viewOf } from '../../src/network/policy.js';
import { resolveSandbox } from '../../src/sandbox/discovery.js';
import { changePolicy } from '../../src/sandbox/network-policy.js';

export default class NetworkAllow extends BaseCommand {
  /** What the command does to the pattern; `network block` is this command with 'block'. */
  static action: 'allow' | 'block' = 'allow';

  static override args = hostArgs;

  static override description =
    'Allow a host for a running sandbox, from its next request on: no restart of the sandbox or its agent. Takes the pattern off the block list; a broader block still wins.';

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> . api.example.com',
      description: "Let this folder's sandbox reach api.example.com.",
    },
  ];

  static override summary = 'Allow a host for a running sandbox.';

  async run(): Promise<PolicyView> {
    const command = this.constructor as typeof NetworkAllow;
    const { args } = await this.parse(command);
    const policy = viewOf(
      await changePolicy(await resolveSandbox(args.sandbox), command.action, args.pattern),
    );
    if (!this.jsonEnabled()) this.log(formatPolicy(policy));
    return policy;
  }
}
