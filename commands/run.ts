import { Args, Flags } from '@oclif/core';
import { agentNames, getAgent, launchCommand } from '../src/agents/registry.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { ImageProgress } from '../src/cli/progress.js';
import { withTerminal } from '../src/cli/terminal.js';
import { proxyEnv } from '../src/config/tls-proxy.js';
import { execAttached } from '../src/engine/exec.js';
import { resolveWorkspace } from '../src/sandbox/identity.js';
import { ensureSandbox } from '../src/sandbox/lifecycle.js';
import { type EnvVar, parseEnvArgs, parseEnvFile, parseVolume } from '../src/sandbox/options.js';
import { execEnv, execUser } from '../src/sandbox/spec.js';

export default class Run extends BaseCommand {
  static override args = {
    agent: Args.string({
      description: `Agent to launch: ${agentNames().join(', ')}.`,
      required: true,
      ignoreStdin: true,
    }),
    workspace: Args.string({
      description: 'Project folder to mount (default: the current folder).',
      ignoreStdin: true,
    }),
  };

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
  ];

  static override flags = {
    env: Flags.string({
      char: 'e',
      description:
        "Set a variable (KEY=VALUE), or pass the host's (KEY). Repeatable. Given to the agent only, not stored in the container.",
      multiple: true,
      multipleNonGreedy: true,
    }),
    'env-file': Flags.string({
      description: 'Read variables from a file of KEY=VALUE lines. Repeatable.',
      multiple: true,
      multipleNonGreedy: true,
    }),
    template: Flags.string({
      char: 't',
      description: 'Template for a new sandbox: a name, a folder with a Dockerfile, or an image reference.',
    }),
    volume: Flags.string({
      char: 'v',
      description: 'Mount a host path: HOST:CONTAINER[:ro]. Repeatable; applies when the sandbox is created.',
      multiple: true,
      multipleNonGreedy: true,
    }),
  };

  static override strict = false;

  static override usage = '<%= command.id %> AGENT [WORKSPACE] [FLAGS] [-- AGENT_ARGS...]';

  async run(): Promise<void> {
    const split = this.argv.indexOf('--');
    const own = split === -1 ? this.argv : this.argv.slice(0, split);
    const agentArgs = split === -1 ? [] : this.argv.slice(split + 1);
    const { args, flags, argv } = await this.parse(Run, own);
    if (argv.length > 2) {
      this.error(`Unexpected argument: ${String(argv[2])}`, { exit: 2 });
    }
    const agent = getAgent(args.agent);
    const workspace = resolveWorkspace(args.workspace);
    const vars: EnvVar[] = [];
    const unset: string[] = [];
    for (const parsed of [
      ...(flags['env-file'] ?? []).map((f) => parseEnvFile(f)),
      parseEnvArgs(flags.env ?? []),
    ]) {
      vars.push(...parsed.vars);
      unset.push(...parsed.unset);
    }
    if (unset.length > 0) this.warn(`not set on this host, so not passed: ${unset.join(', ')}`);
    const volumes = (flags.volume ?? []).map((v) => parseVolume(v));

    const sandbox = await ensureSandbox({
      workspace,
      agent,
      template: flags.template,
      volumes,
      version: this.config.version,
      reporter: new ImageProgress(),
      onCreated: (s) =>
        process.stderr.write(`sbx: created sandbox ${s.name} for ${agent.name} (${s.image})\n`),
    });
    for (const warning of sandbox.warnings) this.warn(warning);

    const user = execUser(sandbox.uid, sandbox.gid);
    const code = await withTerminal((terminal) =>
      execAttached({
        containerId: sandbox.id,
        cmd: ['/usr/local/bin/sbx-exec', ...launchCommand(agent, agentArgs)],
        user: user.user,
        env: execEnv({
          agent,
          user,
          term: terminal ? (process.env.TERM ?? 'xterm-256color') : undefined,
          hostEnv: process.env,
          proxy: proxyEnv(),
          vars,
        }),
        workdir: workspace,
        tty: terminal !== undefined,
        stdin: process.stdin,
        stdout: process.stdout,
        stderr: process.stderr,
        ...(terminal ? { size: terminal.size, onResize: terminal.onResize } : {}),
      }),
    );
    if (code !== 0) this.exit(code);
  }
}
