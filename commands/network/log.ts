import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { resolveSandbox } from '../../src/cli/batch.js';
import { policyNetwork } from '../../src/network/live.js';
import { followLog, readLog } from '../../src/network/proxy.js';

interface Decision {
  time: string;
  method: string;
  host: string;
  port: number;
  allowed: boolean;
  rule: string;
  /** Requests inside TLS the proxy terminated (hosts with a secret): their path, and what it injected. */
  path?: string;
  terminated?: boolean;
  injected?: string[];
}

export default class NetworkLog extends BaseCommand {
  static override args = {
    sandbox: Args.string({ description: "The sandbox (default: this folder's).", ignoreStdin: true }),
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

  async run(): Promise<Decision[]> {
    const { args, flags } = await this.parse(NetworkLog);
    const network = policyNetwork(await resolveSandbox(args.sandbox));
    const format = (d: Decision) =>
      `${d.time}  ${d.allowed ? 'allowed' : 'REFUSED'}  ${d.method} ${d.host}:${d.port}${d.path ?? ''}  (${d.rule})${d.injected?.length ? `  injected: ${d.injected.join(', ')}` : ''}`;
    if (flags.follow) {
      await followLog(network, (line) => {
        this.log(this.jsonEnabled() ? line : format(JSON.parse(line) as Decision));
      });
      return [];
    }
    const decisions = (await readLog(network))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Decision);
    if (!this.jsonEnabled()) for (const d of decisions) this.log(format(d));
    return decisions;
  }
}
