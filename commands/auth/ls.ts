import { BaseCommand } from '../../src/cli/base-command.js';
import { table } from '../../src/cli/render.js';
import { type AgentStateSummary, listAgentState } from '../../src/sandbox/auth.js';
import { formatBytes } from '../../src/shared/parse.js';

export default class AuthLs extends BaseCommand {
  static override description =
    `List your saved agent logins: one login volume per agent and host user, holding only the agent's credential files, shared by all your sandboxes of that agent and kept after \`sbx rm\` (each sandbox keeps its own settings and history). Old state volumes from before logins were per user, shared by every user and project and no longer mounted, are listed as "AGENT (old)" (legacy: true in --json); remove one with \`sbx auth rm AGENT --legacy\`.

LOGGED IN is yes or no where the agent's login file tells, else "?". LAST USED is the newest change inside.`;

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: 'Which agents are logged in.' },
  ];

  static override summary = 'List agents with saved logins and settings.';

  async run(): Promise<AgentStateSummary[]> {
    await this.parse(AuthLs);
    const states = await listAgentState();
    if (!this.jsonEnabled())
      this.log(
        table([
          ['AGENT', 'VOLUME', 'SIZE', 'LAST USED', 'LOGGED IN', 'SANDBOXES'],
          ...states.map((s) => [
            s.legacy ? `${s.agent} (old)` : s.agent,
            s.volume,
            s.size === null ? '?' : formatBytes(s.size),
            s.lastUsed?.replace('T', ' ').slice(0, 16) ?? '?',
            s.loggedIn === null ? '?' : s.loggedIn ? 'yes' : 'no',
            String(s.sandboxes.length),
          ]),
        ]),
      );
    return states;
  }
}
