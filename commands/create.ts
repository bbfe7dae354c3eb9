import { getAgent } from '../src/agents/registry.js';
import { agentArgs } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { approver } from '../src/cli/confirm.js';
import { ImageProgress, syncProgress } from '../src/cli/progress.js';
import { createFlags, optionalBranch, sandboxOptions } from '../src/cli/sandbox-flags.js';
import { resolveWorkspace, sandboxWorkspace } from '../src/sandbox/identity.js';
import { ensureSandbox } from '../src/sandbox/lifecycle.js';
import type { Sandbox } from '../src/sandbox/plan.js';

export default class Create extends BaseCommand {
  static override args = agentArgs('the sandbox is for');

  static override description =
    "Create this workspace's sandbox (or make sure it exists and runs) without launching the agent: what `sbx run` does short of attaching. Prints the sandbox's name.";

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %> claude',
      description: "The current folder's Claude Code sandbox.",
    },
    {
      command: '<%= config.bin %> <%= command.id %> codex ~/src/api --name api-review -p 0:8080 --cpus 2',
      description: 'A second, named sandbox on a folder, with a port on a free host port and 2 CPUs.',
    },
  ];

  static override flags = createFlags;

  static override summary = "Create a workspace's sandbox without launching an agent.";

  async run(): Promise<Omit<Sandbox, 'warnings'>> {
    const { args, flags } = await this.parse(Create, optionalBranch(this.argv));
    const agent = getAgent(args.agent);
    const options = sandboxOptions(flags);
    const { workspace, worktree } = await sandboxWorkspace(
      resolveWorkspace(args.workspace),
      flags,
      agent.name,
    );
    const sandbox = await ensureSandbox({
      workspace,
      worktree,
      agent,
      ...options,
      version: this.config.version,
      ...approver(),
      reporter: new ImageProgress(),
      syncReport: syncProgress(),
      hookOutput: process.stderr,
    });
    for (const warning of sandbox.warnings) this.warn(warning);
    const { warnings: _, ...result } = sandbox;
    if (!this.jsonEnabled()) this.log(sandbox.name);
    return result;
  }
}
