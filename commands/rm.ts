import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { SbxError } from '../src/cli/errors.js';
import { removeContainer } from '../src/engine/containers.js';
import { findSandbox, listSandboxes } from '../src/sandbox/discovery.js';

export interface RmResult {
  removed: string[];
  failed: Array<{ sandbox: string; error: string; exitCode: number }>;
}

export default class Rm extends BaseCommand {
  static override args = {
    sandbox: Args.string({
      description: 'Sandboxes to remove: name, id prefix, or workspace path (. for here).',
      ignoreStdin: true,
    }),
  };

  static override description =
    'Remove sandboxes. Only the container goes: workspace files are never touched. A running sandbox needs -f.';

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
  ];

  static override flags = {
    force: Flags.boolean({
      char: 'f',
      description: 'Remove running sandboxes too (they are stopped first).',
    }),
  };

  static override strict = false;

  async run(): Promise<RmResult> {
    const { argv, flags } = await this.parse(Rm);
    const refs = argv as string[];
    if (refs.length === 0) this.error('Name at least one sandbox.', { exit: 2 });
    const all = await listSandboxes();
    const result: RmResult = { removed: [], failed: [] };
    for (const ref of refs) {
      try {
        const sandbox = findSandbox(all, ref);
        if (sandbox.running && !flags.force) {
          throw new SbxError('conflict', `${sandbox.name} is running.`, {
            hint: `Stop it first, or use \`sbx rm -f ${ref}\`.`,
          });
        }
        await removeContainer(sandbox.id, flags.force);
        result.removed.push(sandbox.name);
        if (!this.jsonEnabled()) this.log(sandbox.name);
      } catch (err) {
        if (!(err instanceof SbxError)) throw err;
        result.failed.push({ sandbox: ref, error: err.message, exitCode: err.exitCode });
        process.stderr.write(`Error: ${ref}: ${err.message}${err.hint ? ` ${err.hint}` : ''}\n`);
      }
    }
    if (result.failed[0]) process.exitCode = result.failed[0].exitCode;
    return result;
  }
}
