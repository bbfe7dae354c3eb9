import { resolve } from 'node:path';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { readConfig } from '../src/config/config.js';
import { readTrust, revokeWorkspace } from '../src/config/trust.js';
import { resolveWorkspace } from '../src/sandbox/identity.js';
import { type TrustResult, trustWorkspace } from '../src/sandbox/trust.js';
import { usageError } from '../src/shared/errors.js';

type Result =
  | TrustResult
  | { workspace: string; revoked: boolean }
  | { workspaces: Array<{ workspace: string; approved: string; files: string[] }> };

export default class Trust extends BaseCommand {
  static override args = {
    workspace: Args.string({ description: 'The workspace folder (default: the current one).' }),
  };

  static override description =
    `Approve the files of a workspace that configure its sandboxes, as they are now: .sbx/settings.json (its allowed hosts, request rules and file guards) and the dev container (devcontainer.json, its Dockerfile, compose files, build context's .dockerignore and local features). sbx uses these files only in a version you approved: a new or changed one is shown and asked about on a terminal, and refused without one, because an agent in a sandbox of the workspace can write them. Prints each file approved now with what it asks for.

What was approved is kept outside the workspace, as a hash per file, in sbx's config folder (trust.json). --revoke forgets a workspace's approvals; --list shows every approved workspace.`;

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %>',
      description: "Approve the current folder's settings and dev container files as they are.",
    },
    {
      command: '<%= config.bin %> <%= command.id %> ~/src/api --devcontainer .devcontainer/go',
      description: 'Approve a workspace with another of its dev containers.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> --revoke',
      description: "Forget this folder's approvals.",
    },
    {
      command: '<%= config.bin %> <%= command.id %> --list --json',
      description: 'Every approved workspace.',
    },
  ];

  static override flags = {
    devcontainer: Flags.string({
      description:
        'The dev container to approve, when the workspace has several (as for sbx run; default: .devcontainer/devcontainer.json, else .devcontainer.json).',
    }),
    list: Flags.boolean({
      description: 'List the approved workspaces and their files.',
      exclusive: ['revoke'],
    }),
    revoke: Flags.boolean({ description: "Forget the workspace's approvals." }),
  };

  static override summary = "Approve a workspace's settings and dev container files as they are now.";

  async run(): Promise<Result> {
    const { args, flags } = await this.parse(Trust);
    const json = this.jsonEnabled();
    if (flags.list) {
      if (args.workspace !== undefined) throw usageError('--list takes no workspace.', 'Drop the folder.');
      const workspaces = Object.entries(readTrust()).map(([workspace, r]) => ({
        workspace,
        approved: r.approved,
        files: Object.keys(r.files),
      }));
      if (!json)
        for (const w of workspaces) this.log(`${w.workspace}  (${w.approved}): ${w.files.join(', ') || '-'}`);
      return { workspaces };
    }
    if (flags.revoke) {
      // A workspace removed since can still be forgotten, by the path it had.
      let workspace: string;
      try {
        workspace = resolveWorkspace(args.workspace);
      } catch {
        workspace = resolve(args.workspace ?? '.');
      }
      const revoked = revokeWorkspace(workspace);
      if (!json)
        process.stderr.write(
          `sbx: ${revoked ? `forgot the approvals of ${workspace}` : `${workspace} had no approvals`}.\n`,
        );
      return { workspace, revoked };
    }
    const workspace = resolveWorkspace(args.workspace);
    const result = trustWorkspace(workspace, await readConfig(), flags.devcontainer);
    if (!json) {
      for (const item of result.approved) {
        this.log(`approved ${item.path} (${item.change})`);
        for (const line of item.shows) this.log(`  - ${line}`);
      }
      if (result.approved.length === 0)
        process.stderr.write(
          `sbx: nothing new to approve in ${workspace}${result.files.length ? ` (approved: ${result.files.join(', ')})` : ''}.\n`,
        );
    }
    return result;
  }
}
