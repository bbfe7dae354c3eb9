import { Flags } from '@oclif/core';
import { allUsersFlag } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { lsTable } from '../src/cli/render.js';
import {
  describeSandboxes,
  lastUsedOfAll,
  listSandboxes,
  type SandboxRef,
  type SandboxSummary,
} from '../src/sandbox/discovery.js';

export default class Ls extends BaseCommand {
  static override description =
    `List your sandboxes (the ones you made; --all-users: every host user's, where the engine shows them): running first, then by workspace.

--json prints an array with one object per sandbox: id, name, agent, state (running, paused or stopped), status (the engine's words), workspace, default (false for a sandbox made with --name), template (as asked for), image, created (ISO 8601), uid and gid (of the workspace owner), network (its own, "none", or null), branch (of a --branch sandbox, else null), runtime (the OCI runtime: runc, runsc for gVisor...), lastUsed (ISO 8601: now while it runs, else when it stopped; a sandbox that stopped itself for being idle: its last activity), ports (hostIp, hostPort, boundPort while running, containerPort, protocol) and limits (cpus, memory in bytes, pidsLimit; 0 is no limit).`;

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
    ...allUsersFlag,
    agent: Flags.string({ description: 'Only sandboxes of this agent.' }),
    quiet: Flags.boolean({ char: 'q', description: 'Only names, one per line.' }),
    status: Flags.string({
      description: 'Only sandboxes in this state.',
      options: ['running', 'paused', 'stopped'],
    }),
  };

  static override summary = 'List sandboxes.';

  async run(): Promise<SandboxSummary[] | SandboxRef[]> {
    const { flags } = await this.parse(Ls);
    const refs = (await listSandboxes({ allUsers: flags['all-users'] })).filter(
      (s) => (!flags.agent || s.agent === flags.agent) && (!flags.status || s.state === flags.status),
    );
    // Only --json has ports and limits, which take an inspection per sandbox.
    if (this.jsonEnabled()) return describeSandboxes(refs);
    if (flags.quiet) for (const s of refs) this.log(s.name);
    else this.log(lsTable(refs, await lastUsedOfAll(refs)));
    return refs;
  }
}
