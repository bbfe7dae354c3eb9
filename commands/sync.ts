import { Args, Flags } from '@oclif/core';
import { sandboxArg } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { syncProgress } from '../src/cli/progress.js';
import { errorText } from '../src/cli/render.js';
import { runningSandbox } from '../src/sandbox/lifecycle.js';
import { syncSandbox } from '../src/sandbox/workspace-sync.js';
import { SbxError, usageError } from '../src/shared/errors.js';
import type { Direction } from '../src/sync/plan.js';
import type { SyncResult } from '../src/sync/sync.js';

const DIRECTIONS = ['pull', 'push', 'both'] as const;

export default class Sync extends BaseCommand {
  static override args = {
    sandbox: sandboxArg.optional,
    direction: Args.string({
      description: 'pull (sandbox → host), push (host → sandbox) or both (default).',
      ignoreStdin: true,
    }),
  };

  static override description = `Sync a synced sandbox's workspace copy with the host's workspace.

Sandboxes on an engine that cannot see the workspace (a remote one, or made with --sync) work on a copy of it in a volume. sbx run, exec and shell sync it both ways before and copy it back after; this command syncs at any other time, or keeps syncing with --watch. Only what changed travels. A file changed on both sides since the last sync is never overwritten: sbx lists the conflicts and copies nothing until you choose --ours (this host's versions) or --theirs (the sandbox's). Deletions travel only when the other side had not changed the file. Git hooks, .git/config and .sbx/ are never copied back; config sync.exclude and the settings' denyRead are never copied at all.`;

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: "Sync this folder's sandbox both ways." },
    {
      command: '<%= config.bin %> <%= command.id %> sbx-app-1a2b3c4d pull',
      description: "Copy the sandbox's changes back here.",
    },
    {
      command: '<%= config.bin %> <%= command.id %> --watch',
      description: 'Keep syncing every 2 seconds while an agent works in the background (Ctrl-C stops).',
    },
    {
      command: '<%= config.bin %> <%= command.id %> . --theirs',
      description: "Settle conflicts by taking the sandbox's versions.",
    },
  ];

  static override flags = {
    interval: Flags.integer({ description: 'With --watch: seconds between syncs.', default: 2, min: 1 }),
    ours: Flags.boolean({ description: "On conflicts, keep this host's versions.", exclusive: ['theirs'] }),
    theirs: Flags.boolean({ description: "On conflicts, keep the sandbox's versions.", exclusive: ['ours'] }),
    watch: Flags.boolean({ char: 'w', description: 'Keep syncing until interrupted.' }),
  };

  static override summary = "Sync a synced (remote) sandbox's workspace copy with the host.";

  async run(): Promise<SyncResult> {
    const { args, flags } = await this.parse(Sync);
    let ref = args.sandbox;
    let direction = args.direction;
    if (direction === undefined && DIRECTIONS.includes(ref as Direction)) [ref, direction] = [undefined, ref];
    if (direction !== undefined && !DIRECTIONS.includes(direction as Direction))
      throw usageError(`"${direction}" is not a direction.`, 'Give pull, push or both.');
    const sandbox = await runningSandbox(ref);
    if (!sandbox.syncVolume)
      throw new SbxError(
        'usage',
        `${sandbox.name} mounts ${sandbox.workspace} itself: there is nothing to sync.`,
        {
          hint: 'Sync applies to sandboxes on engines that cannot see the workspace, or made with `sbx create --sync`.',
        },
      );
    const prefer = flags.ours ? 'ours' : flags.theirs ? 'theirs' : undefined;
    const report = syncProgress();
    const once = () => syncSandbox(sandbox, (direction as Direction | undefined) ?? 'both', prefer, report);
    if (!flags.watch) return once();
    process.stderr.write(`sbx: syncing ${sandbox.name} every ${flags.interval} s; Ctrl-C stops.\n`);
    let stopped = false;
    process.once('SIGINT', () => {
      stopped = true;
    });
    let last: SyncResult | undefined;
    while (!stopped) {
      try {
        last = await once();
      } catch (err) {
        // Conflicts wait for the user; the watch goes on with the rest.
        if (!(err instanceof SbxError) || err.kind !== 'conflict') throw err;
        process.stderr.write(`${errorText(err, '', 'sbx')}\n`);
      }
      for (let waited = 0; waited < flags.interval * 10 && !stopped; waited++)
        await new Promise((r) => setTimeout(r, 100));
    }
    return last!;
  }
}
