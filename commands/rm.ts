import { Flags } from '@oclif/core';
import { allUsersFlag, sandboxArg } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { type BatchResult, forEachSandbox } from '../src/cli/batch.js';
import { confirm, interactive } from '../src/cli/confirm.js';
import { syncProgress } from '../src/cli/progress.js';
import { listSandboxes } from '../src/sandbox/discovery.js';
import { removeSandbox } from '../src/sandbox/lifecycle.js';
import { usageError } from '../src/shared/errors.js';

export default class Rm extends BaseCommand {
  static override args = {
    sandbox: sandboxArg.several('remove'),
  };

  static override description =
    "Remove sandboxes: the container, its network and port forwarder. Workspace files and agent logins are never touched. A running sandbox needs -f. A synced sandbox's changes are copied back first (refused on conflicts, see `sbx sync`), then its workspace copy is removed.";

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> .',
      description: "Remove this folder's (stopped) sandbox.",
    },
    {
      command: '<%= config.bin %> <%= command.id %> -f sbx-app-1a2b3c4d',
      description: 'Remove a sandbox even while it runs.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --all',
      description: 'Remove every sandbox (asks once).',
    },
  ];

  static override flags = {
    ...allUsersFlag,
    'discard-changes': Flags.boolean({
      description:
        "A synced sandbox (remote engine): remove it and its workspace copy without first copying the sandbox's changes back (they are lost).",
    }),
    all: Flags.boolean({ char: 'a', description: 'Remove every sandbox; asks once on a terminal.' }),
    force: Flags.boolean({
      char: 'f',
      description:
        'Remove running sandboxes too (they are stopped first), do not ask, and with --worktree remove it even with uncommitted changes.',
    }),
    worktree: Flags.boolean({
      description:
        "Also remove a branch sandbox's worktree; refused when it has uncommitted changes or commits no other branch has, unless -f. The branch is never deleted.",
    }),
  };

  static override strict = false;

  static override summary = 'Remove sandboxes (never workspace files or logins).';

  async run(): Promise<BatchResult> {
    const { argv, flags } = await this.parse(Rm);
    const refs = argv as string[];
    if (refs.length > 0 === Boolean(flags.all))
      throw usageError(
        'Name the sandboxes to remove, or use --all (not both).',
        'See `sbx ls` for their names.',
      );
    const targets = flags.all ? await listSandboxes({ allUsers: flags['all-users'] }) : refs;
    if (flags.all && !flags.force) {
      if (!interactive())
        throw usageError(
          'rm --all asks before removing, and there is no terminal to ask on.',
          'Add -f to remove them all without asking.',
        );
      if (targets.length === 0) return { done: [], failed: [] };
      const running = targets.filter((s) => typeof s !== 'string' && s.state !== 'stopped').length;
      const ok = await confirm(
        `Remove all ${targets.length} sandboxes${running ? ` (${running} running, stopped first)` : ''}? Workspace files and agent logins stay.`,
      );
      if (!ok) {
        process.stderr.write('sbx: nothing removed.\n');
        return { done: [], failed: [] };
      }
    }
    const force = flags.force || flags.all;
    const report = syncProgress();
    return forEachSandbox(
      targets,
      (sandbox) =>
        removeSandbox(sandbox, {
          force,
          discardChanges: flags['discard-changes'],
          worktree: flags.worktree ? { force: flags.force } : undefined,
          report,
        }),
      { json: this.jsonEnabled() },
    );
  }
}
