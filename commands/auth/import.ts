import { Args } from '@oclif/core';
import { getAgent } from '../../src/agents/registry.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { importLogin } from '../../src/sandbox/auth.js';
import { loginVolume } from '../../src/sandbox/credentials.js';

export default class AuthImport extends BaseCommand {
  static override args = {
    agent: Args.string({
      description: 'The agent whose login to import.',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override description =
    "Copy the host's login for an agent (its credential files only, e.g. ~/.claude/.credentials.json, ~/.codex/auth.json) into your login volume of it, so all your sandboxes of it start logged in. For people already logged in on the host.";

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> codex',
      description: 'Use the Codex login of this machine in sandboxes.',
    },
  ];

  static override summary = "Copy the host's agent login into your sandboxes' login volume.";

  async run(): Promise<{ volume: string; copied: string[] }> {
    const { args } = await this.parse(AuthImport);
    const agent = getAgent(args.agent);
    const copied = await importLogin(agent);
    if (!this.jsonEnabled()) this.log(`copied ${copied.join(', ')} into ${loginVolume(agent.name)}`);
    return { volume: loginVolume(agent.name), copied };
  }
}
