import { Flags } from '@oclif/core';
import { allUsersFlag } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { confirm, interactive } from '../src/cli/confirm.js';
import { ago, bytes, errorText } from '../src/cli/render.js';
import { applyPrune, emptyPlan, type PruneResult, planPrune } from '../src/sandbox/disk.js';
import { EXIT_CODES, SbxError, usageError } from '../src/shared/errors.js';
import { parseDuration } from '../src/shared/parse.js';

export default class Prune extends BaseCommand {
  static override description =
    `Remove what sbx holds that nothing uses and nobody can want back: template images superseded by a template change (and sbx builds that lost their tags) that no container uses, and the networks and port forwarders of sandboxes that no longer exist (removed with \`docker rm\`).

--sandboxes also removes stopped sandboxes (as \`sbx rm\` does: workspace files stay), those unused for longer than --until when given. --images also removes current template images no container uses (the next use builds them again). --all is both.

Never removed: agent-state volumes (logins; see \`sbx auth rm\`), workspace files, images saved with \`sbx save\` (see \`sbx template rm\`), images sbx did not build, running sandboxes. Lists what it removes and the space freed, asks on a terminal, and needs --force otherwise. With SBX_LABELS set, only what carries those labels is considered.`;

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %> --dry-run', description: 'What would be removed.' },
    { command: '<%= config.bin %> <%= command.id %>', description: 'Remove it (asks first).' },
    {
      command: '<%= config.bin %> <%= command.id %> --sandboxes --until 30d --force',
      description: 'Also remove sandboxes stopped and unused for 30 days, without asking.',
    },
  ];

  static override flags = {
    ...allUsersFlag,
    all: Flags.boolean({ description: 'Both --sandboxes and --images.' }),
    'dry-run': Flags.boolean({ description: 'Only list what would be removed.' }),
    force: Flags.boolean({ char: 'f', description: 'Do not ask.' }),
    images: Flags.boolean({
      description: 'Also remove current template images no container uses (rebuilt on next use).',
    }),
    sandboxes: Flags.boolean({
      description: 'Also remove stopped sandboxes (workspace files and logins stay); see --until.',
    }),
    until: Flags.string({
      description: 'With --sandboxes: only those last used longer ago than this, e.g. 30d, 12h.',
    }),
  };

  static override summary = 'Remove superseded template images and leftovers of removed sandboxes.';

  async run(): Promise<PruneResult> {
    const { flags } = await this.parse(Prune);
    const sandboxes = flags.sandboxes || flags.all;
    if (flags.until !== undefined && !sandboxes)
      throw usageError('--until applies to --sandboxes.', 'Add --sandboxes (or --all).');
    const unusedFor = flags.until === undefined ? 0 : parseDuration(flags.until, '--until');
    const plan = await planPrune({
      allUsers: flags['all-users'],
      sandboxesUnusedFor: sandboxes ? unusedFor : undefined,
      images: flags.images || flags.all,
    });
    const result: PruneResult = { ...plan, dryRun: Boolean(flags['dry-run']), removed: false, failed: [] };
    const json = this.jsonEnabled();
    const say = (line: string) => {
      if (!json) process.stderr.write(`${line}\n`);
    };
    if (emptyPlan(plan)) {
      say('sbx: nothing to prune.');
      return result;
    }
    if (!json) {
      for (const s of plan.sandboxes)
        this.log(`sandbox  ${s.name}  (${s.workspace}, last used ${ago(s.lastUsed)}; its files stay)`);
      for (const n of plan.networks)
        this.log(
          `network  ${n.name}  (of the removed sandbox ${n.sandbox}${n.forwarder ? `, with its port forwarder ${n.forwarder}` : ''})`,
        );
      for (const i of plan.images)
        this.log(`image    ${i.tags.join(', ') || i.id.slice(7, 19)}  (${i.status}, unused)`);
    }
    say(`sbx: this frees ${bytes(plan.freed)}.`);
    if (flags['dry-run']) return result;
    if (!flags.force) {
      if (!interactive())
        throw usageError(
          'prune asks before removing, and there is no terminal to ask on.',
          'Add --force to remove without asking, or --dry-run to only list.',
        );
      if (!(await confirm('Remove these?'))) {
        say('sbx: nothing removed.');
        return result;
      }
    }
    result.failed = await applyPrune(plan);
    result.removed = true;
    for (const f of result.failed)
      process.stderr.write(
        `${errorText(new SbxError('conflict', `${f.what}: ${f.error}`, { hint: 'the rest was removed; `sbx prune --dry-run` shows what is left, and running it again retries.' }))}\n`,
      );
    if (result.failed.length) process.exitCode = EXIT_CODES.conflict;
    return result;
  }
}
