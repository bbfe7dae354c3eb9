import { sandboxArg } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { formatPort } from '../src/cli/render.js';
import { describeSandboxes, type PortSummary, resolveSandbox } from '../src/sandbox/discovery.js';

export default class Ports extends BaseCommand {
  static override args = {
    sandbox: sandboxArg.optional,
  };

  static override description =
    'Show the ports a sandbox publishes: CONTAINER/PROTOCOL -> HOST_IP:HOST_PORT (the port in use while it runs).';

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: "This folder's sandbox." },
  ];

  static override summary = 'Show the ports a sandbox publishes.';

  async run(): Promise<PortSummary[]> {
    const { args } = await this.parse(Ports);
    const [summary] = await describeSandboxes([await resolveSandbox(args.sandbox)]);
    const ports = summary?.ports ?? [];
    if (!this.jsonEnabled()) for (const p of ports) this.log(formatPort(p));
    return ports;
  }
}
