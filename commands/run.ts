import { Flags } from '@oclif/core';
import { getAgent, launchCommand } from '../src/agents/registry.js';
import { agentArgs, splitAtDashes } from '../src/cli/args.js';
import { runInSandbox } from '../src/cli/attach.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { runReports } from '../src/cli/progress.js';
import { createFlags, envFlags, optionalBranch, sandboxOptions } from '../src/cli/sandbox-flags.js';
import { readConfig } from '../src/config/config.js';
import { syncConfig } from '../src/sandbox/credentials.js';
import { envVars } from '../src/sandbox/env.js';
import { resolveWorkspace, sandboxWorkspace } from '../src/sandbox/identity.js';
import { ensureSandbox } from '../src/sandbox/lifecycle.js';
import { execUser } from '../src/sandbox/spec.js';
import { EXIT_CODES, SbxError } from '../src/shared/errors.js';

export default class Run extends BaseCommand {
  static override args = agentArgs('to launch');

  static override description = `Create or reattach this workspace's sandbox and launch an agent in it.

The workspace is mounted at the same absolute path and is the working directory. The agent runs as a user with the workspace owner's UID/GID, with its permission prompts turned off. Running sbx run again in the same folder reattaches to the same container: what the agent installed is still there. Arguments after -- go to the agent; sbx exits with the agent's exit code.`;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> claude',
      description: 'Launch Claude Code on the current folder.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> gemini ~/src/app --template ./my-template',
      description: 'Gemini on another folder, from a custom template.',
    },
    {
      command: "<%= config.bin %> <%= command.id %> claude -- -p 'explain this repo'",
      description: 'Pass arguments to the agent.',
    },
    {
      command: 'echo hi | <%= config.bin %> <%= command.id %> shell -- cat',
      description: 'Pipe data through a command in the sandbox.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> codex -e OPENAI_API_KEY -v ~/data:/data:ro',
      description: 'Pass a variable from the host and mount a folder read-only.',
    },
    {
      command: '<%= config.bin %> <%= command.id %> claude -d --name review -p 0:3000 --memory 8g',
      description: 'A second, named sandbox on this folder: agent in the background, a port, a memory limit.',
    },
  ];

  static override flags = {
    ...createFlags,
    ...envFlags,
    'sync-config': Flags.boolean({
      description:
        "Copy your host's agent instructions and settings (e.g. ~/.claude/CLAUDE.md, settings.json, commands/, agents/, skills/) into the sandbox's agent state first; logins there are never overwritten. Default: config syncConfig.",
      allowNo: true,
    }),
    detached: Flags.boolean({
      char: 'd',
      description:
        'Start the agent in the background and return; it keeps running after sbx exits. `sbx run AGENT` again attaches to it.',
    }),
  };

  static override strict = false;

  static override summary = "Create or reattach this workspace's sandbox and launch an agent in it.";

  static override usage = '<%= command.id %> AGENT [WORKSPACE] [FLAGS] [-- AGENT_ARGS...]';

  async run(): Promise<void> {
    const { own, rest: forAgent } = splitAtDashes(this.argv);
    const { args, flags, argv } = await this.parse(Run, optionalBranch(own));
    if (argv.length > 2) {
      this.error(`Unexpected argument: ${String(argv[2])}`, { exit: 2 });
    }
    const agent = getAgent(args.agent);
    const options = sandboxOptions(flags);
    const { vars, unset } = await envVars(flags);
    const { workspace, worktree } = await sandboxWorkspace(
      resolveWorkspace(args.workspace),
      flags,
      agent.name,
    );
    if (unset.length > 0) this.warn(`not set on this host, so not passed: ${unset.join(', ')}`);

    const sandbox = await ensureSandbox({
      workspace,
      agent,
      ...options,
      worktree,
      version: this.config.version,
      ...runReports(agent.name),
    });
    for (const warning of sandbox.warnings) this.warn(warning);
    if ((flags['sync-config'] ?? (await readConfig()).syncConfig) && sandbox.credentials !== 'host') {
      const copied = await syncConfig(agent, sandbox, execUser(sandbox.uid, sandbox.gid).home);
      if (copied.length > 0) process.stderr.write(`sbx: synced ${copied.map((p) => `~/${p}`).join(', ')}\n`);
    }

    const code = await runInSandbox({
      sandbox,
      agent,
      cmd: launchCommand(agent, forAgent),
      vars,
      workdir: workspace,
      tty: 'auto',
      stdin: true,
      session: flags.detached ? 'detach' : 'attach',
    });
    if (flags.detached) {
      if (code === EXIT_CODES.conflict) {
        throw new SbxError('conflict', `${agent.name} already runs in the background of ${sandbox.name}.`, {
          hint: `Attach to it with \`sbx run ${agent.name}\`${options.name ? ` --name ${options.name}` : ''} in ${workspace}.`,
        });
      }
      if (code === 0) {
        process.stderr.write(
          `sbx: ${agent.name} runs in the background of ${sandbox.name}; attach with \`sbx run ${agent.name}${options.name ? ` --name ${options.name}` : ''}\` here, or \`sbx shell ${sandbox.name}\` then \`tmux attach -t sbx-${agent.name}\`.\n`,
        );
      }
    }
    if (code !== 0) this.exit(code);
  }
}
