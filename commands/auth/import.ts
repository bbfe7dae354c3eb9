import { Args } from '@oclif/core';
import { getAgent } from '../../src/agents/registry.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { importLogin } from '../../src/sandbox/auth.js';
import { stateVolume } from '../../src/sandbox/credentials.js';

export default class AuthImport extends BaseCommand {
  static override args = {
    agent: Args.string({
      description: 'The agent whose login to import.',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override description =
    "Copy the host's login for an agent (e.g. ~/.claude/.credentials.json and ~/.claude.json) into its state volume, so all its sandboxes start logged in. For people already logged in on the host.";

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> codex',
      description: 'Use the Codex login of this machine in sandboxes.',
    },
  ];

  static override summary = "Copy the host's agent login into its sandboxes' state.";

  async run(): Promise<{ volume: string; copied: string[] }> {
    const { args } = await this.parse(AuthImport);
    const agent = getAgent(args.agent);
    const copied = await importLogin(agent);
    if (!this.jsonEnabled()) this.log(`copied ${copied.join(', ')} into ${stateVolume(agent.name)}`);
    return { volume: stateVolume(agent.name), copied };
  }
}
