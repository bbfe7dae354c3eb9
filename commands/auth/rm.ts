import { Args, Flags } from '@oclif/core';
import { getAgent } from '../../src/agents/registry.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { confirm, interactive } from '../../src/cli/confirm.js';
import { removeAgentState } from '../../src/sandbox/auth.js';
import { stateVolume } from '../../src/sandbox/credentials.js';
import { usageError } from '../../src/shared/errors.js';

export default class AuthRm extends BaseCommand {
  static override args = {
    agent: Args.string({
      description: 'The agent whose state to remove.',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override description =
    "Remove an agent's saved state (its login, settings and history in the state volume). Asks first on a terminal; -f does not ask. Refused while a sandbox mounts it.";

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> claude',
      description: 'Log Claude Code out of every sandbox.',
    },
  ];

  static override flags = { force: Flags.boolean({ char: 'f', description: 'Do not ask.' }) };

  static override summary = "Remove an agent's saved login and settings.";

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AuthRm);
    const agent = getAgent(args.agent);
    if (!flags.force) {
      if (!interactive())
        throw usageError(
          'auth rm asks before removing, and there is no terminal to ask on.',
          'Add -f to remove without asking.',
        );
      if (
        !(await confirm(`Remove ${agent.name}'s login, settings and history (${stateVolume(agent.name)})?`))
      ) {
        process.stderr.write('sbx: nothing removed.\n');
        return;
      }
    }
    await removeAgentState(agent);
    this.log(stateVolume(agent.name));
  }
}
