import { Flags } from '@oclif/core';
import { sandboxArg, splitAtDashes } from '../src/cli/args.js';
import { agentOf, runInSandbox } from '../src/cli/attach.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { envFlags } from '../src/cli/sandbox-flags.js';
import { envVars } from '../src/sandbox/env.js';
import { runningSandbox } from '../src/sandbox/lifecycle.js';
import { usageError } from '../src/shared/errors.js';

export default class Exec extends BaseCommand {
  static override args = {
    sandbox: sandboxArg.required,
  };

  static override description = `Run a command in a sandbox and exit with its exit code.

Like docker exec: -i passes this input to the command, -t gives it a terminal. It runs as the workspace owner's user in the workspace folder unless -u/-w say otherwise, with the sandbox agent's settings and API keys. A stopped sandbox is started first.`;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> . -- npm test',
      description: "Run the tests in this folder's sandbox.",
    },
    {
      command: '<%= config.bin %> <%= command.id %> -it sbx-app-1a2b3c4d -- htop',
      description: 'An interactive program.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> -u root . -- apt-get install -y postgresql-client',
      description: 'As root.',
    },
  ];

  static override flags = {
    ...envFlags,
    interactive: Flags.boolean({ char: 'i', description: "Pass this process's input to the command." }),
    tty: Flags.boolean({ char: 't', description: 'Give the command a terminal (needs one here).' }),
    user: Flags.string({
      char: 'u',
      description: 'User inside: a name or UID[:GID] (default: the workspace owner).',
    }),
    workdir: Flags.string({ char: 'w', description: 'Working directory inside (default: the workspace).' }),
  };

  static override strict = false;

  static override summary = 'Run a command in a sandbox.';

  static override usage = '<%= command.id %> SANDBOX [-i] [-t] [-u USER] [-w DIR] [-e K=V] -- COMMAND...';

  async run(): Promise<void> {
    const { own, rest: tail } = splitAtDashes(this.argv);
    const { args, argv, flags } = await this.parse(Exec, own);
    const cmd = [...(argv as string[]).slice(1), ...tail];
    if (cmd.length === 0)
      throw usageError('Give the command to run.', 'For example: sbx exec . -- ls -la (a shell: sbx shell).');
    const { vars, unset } = await envVars(flags);
    if (unset.length > 0) this.warn(`not set on this host, so not passed: ${unset.join(', ')}`);
    const sandbox = await runningSandbox(args.sandbox);
    const code = await runInSandbox({
      sandbox,
      agent: agentOf(sandbox),
      cmd,
      vars,
      workdir: flags.workdir ?? sandbox.workspace,
      user: flags.user,
      tty: flags.tty,
      stdin: flags.interactive,
    });
    if (code !== 0) this.exit(code);
  }
}
