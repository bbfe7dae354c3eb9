import { Flags } from '@oclif/core';
import { allUsersFlag, sandboxArg } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { type BatchResult, forEachSandbox } from '../src/cli/batch.js';
import { listSandboxes } from '../src/sandbox/discovery.js';
import { stopSandbox } from '../src/sandbox/lifecycle.js';
import { usageError } from '../src/shared/errors.js';

export default class Stop extends BaseCommand {
  static override args = {
    sandbox: sandboxArg.several('stop'),
  };

  static override description =
    'Stop sandboxes and their port forwarders. What is installed in them stays; `sbx start` or `sbx run` starts them again.';

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %> .', description: "Stop this folder's sandbox." },
    { command: '<%= config.bin %> <%= command.id %> --all', description: 'Stop every running sandbox.' },
  ];

  static override flags = {
    ...allUsersFlag,
    all: Flags.boolean({ char: 'a', description: 'Stop every running sandbox.' }),
    time: Flags.integer({
      description: 'Seconds to wait for processes to end before killing them.',
      default: 10,
      min: 0,
    }),
  };

  static override strict = false;

  static override summary = 'Stop sandboxes.';

  async run(): Promise<BatchResult> {
    const { argv, flags } = await this.parse(Stop);
    const refs = argv as string[];
    if (refs.length > 0 === Boolean(flags.all))
      throw usageError(
        'Name the sandboxes to stop, or use --all (not both).',
        'See `sbx ls` for their names.',
      );
    const targets = flags.all
      ? (await listSandboxes({ allUsers: flags['all-users'] })).filter((s) => s.state !== 'stopped')
      : refs;
    return forEachSandbox(targets, (s) => stopSandbox(s, flags.time), { json: this.jsonEnabled() });
  }
}
