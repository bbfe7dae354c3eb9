import { sandboxArg } from '../src/cli/args.js';
import { agentOf, runInSandbox } from '../src/cli/attach.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { envVars } from '../src/sandbox/env.js';
import { runningSandbox } from '../src/sandbox/lifecycle.js';

export default class Shell extends BaseCommand {
  static override args = {
    sandbox: sandboxArg.optional,
  };

  static override description =
    "Open a login shell in a sandbox (by default this folder's), as the workspace owner's user, in the workspace. A stopped sandbox is started first; an agent running in the background is in `tmux attach -t sbx-AGENT`.";

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: "A shell in this folder's sandbox." },
    { command: '<%= config.bin %> <%= command.id %> sbx-api-5e6f7a8b', description: 'In another one.' },
  ];

  static override summary = 'Open a login shell in a sandbox.';

  async run(): Promise<void> {
    const { args } = await this.parse(Shell);
    const sandbox = await runningSandbox(args.sandbox);
    const code = await runInSandbox({
      sandbox,
      agent: agentOf(sandbox),
      cmd: ['bash', '-l'],
      vars: (await envVars({})).vars,
      workdir: sandbox.workspace,
      tty: 'auto',
      stdin: true,
    });
    if (code !== 0) this.exit(code);
  }
}
