import { Args, Flags } from '@oclif/core';
import { sandboxArg } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { bytes } from '../src/cli/render.js';
import { resolveSandbox } from '../src/sandbox/discovery.js';
import { type SaveResult, saveSandbox } from '../src/sandbox/save.js';

export default class Save extends BaseCommand {
  static override args = {
    sandbox: sandboxArg.required,
    name: Args.string({
      description: 'The template name new sandboxes use it by (--template NAME): lowercase, digits, . _ -.',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override description =
    `Save a sandbox as it is now (what the agent installed) as a template: \`--template NAME\` starts new sandboxes from it, in any workspace. The image is the sandbox's template image plus one layer of the files the sandbox changed.

Never in it: the workspace and every other mount (agent-state volumes: logins), the agents' state folders, shell histories, ~/.ssh and other credential files, /tmp, and what sbx set up for this sandbox (git identity, proxy settings, labels, variables). A running sandbox is saved as its files are at that moment. \`sbx template rm NAME\` removes it.`;

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> . node-tools',
      description: "Save this folder's sandbox as the template node-tools.",
    },
    {
      command: '<%= config.bin %> run claude --template node-tools',
      description: 'Start a sandbox elsewhere from it.',
    },
  ];

  static override flags = {
    force: Flags.boolean({ char: 'f', description: 'Replace a saved template of that name.' }),
  };

  static override summary = 'Save a sandbox as a template for new sandboxes.';

  async run(): Promise<SaveResult> {
    const { args, flags } = await this.parse(Save);
    const sandbox = await resolveSandbox(args.sandbox);
    const result = await saveSandbox(sandbox, args.name, {
      force: flags.force,
      cwd: process.cwd(),
      onNote: (note) => this.warn(note),
    });
    if (!this.jsonEnabled())
      this.log(
        `Saved ${result.from} as ${result.name} (${result.image}): ${bytes(result.size)}, of which ${bytes(result.added)} are the sandbox's changes. Use it with --template ${result.name}.`,
      );
    return result;
  }
}
