import { Args } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { type BatchResult, forEachSandbox } from '../src/cli/batch.js';
import { startSandbox } from '../src/network/proxy.js';
import { usageError } from '../src/shared/errors.js';

export default class Start extends BaseCommand {
  static override args = {
    sandbox: Args.string({
      description: 'Sandboxes to start: name, id prefix, or workspace path (. for here).',
      ignoreStdin: true,
    }),
  };

  static override description =
    'Start stopped sandboxes without launching an agent (`sbx run` starts and attaches in one go).';

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %> .', description: "Start this folder's sandbox." },
    {
      command: '<%= config.bin %> <%= command.id %> $(sbx ls -q --status stopped)',
      description: 'Start them all.',
    },
  ];

  static override strict = false;

  static override summary = 'Start stopped sandboxes.';

  async run(): Promise<BatchResult> {
    const { argv } = await this.parse(Start);
    const refs = argv as string[];
    if (refs.length === 0)
      throw usageError('Name at least one sandbox to start.', 'See `sbx ls` for their names.');
    return forEachSandbox(refs, (s) => startSandbox(s.id, s.network, s.secrets), {
      json: this.jsonEnabled(),
    });
  }
}
