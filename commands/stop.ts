import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { type BatchResult, forEachSandbox } from '../src/cli/batch.js';
import { stopContainer } from '../src/engine/containers.js';
import { listSandboxes } from '../src/sandbox/discovery.js';
import { usageError } from '../src/shared/errors.js';

export default class Stop extends BaseCommand {
  static override args = {
    sandbox: Args.string({
      description: 'Sandboxes to stop: name, id prefix, or workspace path (. for here).',
      ignoreStdin: true,
    }),
  };

  static override description =
    'Stop sandboxes. What is installed in them stays; `sbx start` or `sbx run` starts them again.';

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %> .', description: "Stop this folder's sandbox." },
    { command: '<%= config.bin %> <%= command.id %> --all', description: 'Stop every running sandbox.' },
  ];

  static override flags = {
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
    const targets = flags.all ? (await listSandboxes()).filter((s) => s.state !== 'stopped') : refs;
    return forEachSandbox(targets, (s) => stopContainer(s.id, flags.time), { json: this.jsonEnabled() });
  }
}
