import { hostArgs } from '../../src/cli/args.js';
import NetworkAllow from './allow.js';

export default class NetworkBlock extends NetworkAllow {
  static override action = 'block' as const;

  // oclif reads args and flags from the class itself, not from the one it extends.
  static override args = hostArgs;

  static override enableJsonFlag = true;

  static override description =
    'Block a host for a running sandbox, from its next request on: no restart of the sandbox or its agent. Block beats allow.';

  static override examples = [
    {
      command: "<%= config.bin %> <%= command.id %> . '*.example.com'",
      description: "Keep this folder's sandbox off example.com's subdomains.",
    },
  ];

  static override summary = 'Block a host for a running sandbox.';
}
