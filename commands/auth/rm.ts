import { Args, Flags } from '@oclif/core';
import { getAgent } from '../../src/agents/registry.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { confirm, interactive } from '../../src/cli/confirm.js';
import { removeAgentState } from '../../src/sandbox/auth.js';
import { legacyStateVolume, loginVolume } from '../../src/sandbox/credentials.js';
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
    "Remove your saved login of an agent (your login volume of it; sandboxes' own settings and history stay with them). --legacy removes instead the old state volume every sandbox of the agent shared before logins were per user (its login, settings and history). Asks first on a terminal; -f does not ask. Refused while a sandbox mounts it.";

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> claude',
      description: 'Log Claude Code out of every sandbox of yours.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> claude --legacy -f',
      description: 'Remove the old shared Claude Code state volume.',
    },
  ];

  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'Do not ask.' }),
    legacy: Flags.boolean({
      description: 'Remove the old state volume (sbx-state-AGENT) shared by every user and project.',
    }),
  };

  static override summary = "Remove an agent's saved login and settings.";

  async run(): Promise<void> {
    const { args, flags } = await this.parse(AuthRm);
    const agent = getAgent(args.agent);
    const volume = flags.legacy ? legacyStateVolume(agent.name) : loginVolume(agent.name);
    if (!flags.force) {
      if (!interactive())
        throw usageError(
          'auth rm asks before removing, and there is no terminal to ask on.',
          'Add -f to remove without asking.',
        );
      if (
        !(await confirm(
          flags.legacy
            ? `Remove the old shared ${agent.name} state (${volume}): its login, settings and history?`
            : `Remove your ${agent.name} login (${volume})?`,
        ))
      ) {
        process.stderr.write('sbx: nothing removed.\n');
        return;
      }
    }
    this.log(await removeAgentState(agent, { legacy: flags.legacy }));
  }
}
