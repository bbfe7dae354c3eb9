import { Flags } from '@oclif/core';
import { sandboxArg } from '../../src/cli/args.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import type { LogEntry } from '../../src/network/policy.js';
import { resolveSandbox } from '../../src/sandbox/discovery.js';
import { followNetworkLog, networkLog, proxyWarning } from '../../src/sandbox/network-policy.js';

export default class NetworkLog extends BaseCommand {
  static override args = {
    sandbox: sandboxArg.optional,
  };

  static override description =
    "The egress proxy's decisions for a sandbox: time, host, port, allowed or refused, and the rule that decided; on hosts sbx injects secrets into, each request's method and path, and the secrets injected (names). --json prints one object per decision; --follow keeps printing new ones.";

  static override enableJsonFlag = true;

  static override examples = [
    {
      command: '<%= config.bin %> <%= command.id %>',
      description: "What this folder's sandbox reached, and what it was refused.",
    },
    {
      command: '<%= config.bin %> <%= command.id %> sbx-app-1a2b3c4d --follow',
      description: 'Watch it live.',
    },
  ];

  static override flags = {
    follow: Flags.boolean({ char: 'f', description: 'Keep printing new decisions.' }),
  };

  static override summary = "Show a sandbox's network decisions.";

  async run(): Promise<LogEntry[]> {
    const { args, flags } = await this.parse(NetworkLog);
    const sandbox = await resolveSandbox(args.sandbox);
    const format = (d: LogEntry) =>
      d.note
        ? `${d.time}  (${d.rule})`
        : `${d.time}  ${d.allowed ? 'allowed' : 'REFUSED'}  ${d.method} ${d.host}:${d.port}${d.path ?? ''}  (${d.rule})${d.injected?.length ? `  injected: ${d.injected.join(', ')}` : ''}${d.repeated ? `  (and ${d.repeated} more like it)` : ''}`;
    const trouble = await proxyWarning();
    if (trouble) this.warn(trouble);
    if (flags.follow) {
      await followNetworkLog(sandbox, (d) => this.log(this.jsonEnabled() ? JSON.stringify(d) : format(d)));
      return [];
    }
    const decisions = await networkLog(sandbox);
    if (!this.jsonEnabled()) for (const d of decisions) this.log(format(d));
    return decisions;
  }
}
