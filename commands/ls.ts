import { Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { listSandboxes, type SandboxSummary } from '../src/sandbox/discovery.js';

export default class Ls extends BaseCommand {
  static override description = 'List sandboxes: running first, then by workspace.';

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: 'A table of every sandbox.' },
    {
      command: '<%= config.bin %> <%= command.id %> --agent claude --status running -q',
      description: 'Names of running Claude Code sandboxes.',
    },
    { command: '<%= config.bin %> <%= command.id %> --json', description: 'One JSON object per sandbox.' },
  ];

  static override flags = {
    agent: Flags.string({ description: 'Only sandboxes of this agent.' }),
    quiet: Flags.boolean({ char: 'q', description: 'Only names, one per line.' }),
    status: Flags.string({ description: 'Only sandboxes in this state.', options: ['running', 'stopped'] }),
  };

  async run(): Promise<SandboxSummary[]> {
    const { flags } = await this.parse(Ls);
    const sandboxes = (await listSandboxes()).filter(
      (s) =>
        (!flags.agent || s.agent === flags.agent) &&
        (!flags.status || s.running === (flags.status === 'running')),
    );
    if (this.jsonEnabled()) return sandboxes;
    if (flags.quiet) {
      for (const s of sandboxes) this.log(s.name);
      return sandboxes;
    }
    const rows = [
      ['SANDBOX', 'AGENT', 'STATUS', 'WORKSPACE', 'TEMPLATE', 'CREATED'],
      ...sandboxes.map((s) => [
        s.name,
        s.agent,
        s.status,
        s.workspace,
        s.template,
        s.created.replace('T', ' ').slice(0, 16),
      ]),
    ];
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const row of rows)
      this.log(
        row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      );
    return sandboxes;
  }
}
