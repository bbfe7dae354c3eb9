import { sandboxArg } from '../src/cli/args.js';
import { BaseCommand } from '../src/cli/base-command.js';
import { formatPolicy, formatPort } from '../src/cli/render.js';
import { resolveSandbox, type SandboxDetails, sandboxDetails } from '../src/sandbox/discovery.js';
import { formatBytes } from '../src/shared/parse.js';

export default class Inspect extends BaseCommand {
  static override args = {
    sandbox: sandboxArg.optional,
  };

  static override description =
    'Show what a sandbox is: workspace, template and its content hash, agent, user mapping, mounts, variable names (never values), git identity, ports, limits and state.';

  static override enableJsonFlag = true;

  static override examples = [
    { command: '<%= config.bin %> <%= command.id %>', description: "This folder's sandbox." },
    {
      command: '<%= config.bin %> <%= command.id %> sbx-app-1a2b3c4d --json | jq .limits',
      description: 'Its limits, as JSON.',
    },
  ];

  static override summary = "Show a sandbox's configuration and state.";

  async run(): Promise<SandboxDetails> {
    const { args } = await this.parse(Inspect);
    const d = await sandboxDetails(await resolveSandbox(args.sandbox));
    if (this.jsonEnabled()) return d;
    const rows: Array<[string, string]> = [
      ['Name', d.name],
      ['Id', d.id.slice(0, 12)],
      ['State', `${d.state} (${d.status})`],
      ['Workspace', `${d.workspace}${d.default ? '' : ' (named sandbox)'}`],
      ['Agent', d.agent],
      [
        'Worktree',
        d.worktree
          ? `branch ${d.worktree.branch} of ${d.worktree.repository}${d.worktree.from ? `, made from ${d.worktree.from}` : ''}`
          : '(none)',
      ],
      ['Template', d.template],
      ['Image', d.image],
      ['Content hash', d.templateHash ?? '-'],
      ['User', `${d.user.name} with the UID:GID ${d.user.uid}:${d.user.gid} of the workspace owner`],
      ['Git identity', d.git.name || d.git.email ? `${d.git.name ?? '?'} <${d.git.email ?? '?'}>` : '(none)'],
      ['Created', d.created],
      [
        'Limits',
        `cpus ${d.limits.cpus || 'unlimited'}, memory ${d.limits.memory ? formatBytes(d.limits.memory) : 'unlimited'}, pids ${d.limits.pidsLimit || 'unlimited'}`,
      ],
      ['Ports', d.ports.map(formatPort).join(', ') || '(none)'],
      [
        'Mounts',
        d.mounts.map((m) => `${m.source} -> ${m.destination}${m.readOnly ? ' (ro)' : ''}`).join('\n') ||
          '(none)',
      ],
      ['Variables', d.envNames.join(', ')],
      [
        'Network',
        d.network === 'none'
          ? 'none'
          : d.policy
            ? `${d.network}, ${formatPolicy(d.policy)}`
            : (d.network ?? "Docker's default network (made before policies)"),
      ],
      [
        'Secrets',
        d.injection?.secrets.length
          ? `${d.injection.secrets.map((s) => `${s.name} -> ${s.hosts.join(' ')} (${s.header})`).join('\n')}\nTLS terminated by the proxy for: ${d.injection.terminatedHosts.join(' ')}`
          : '(none; TLS is never terminated)',
      ],
      [
        'Hardening',
        `capabilities dropped: ${d.capabilitiesDropped.join(', ') || 'none'}; sudo: ${d.sudo ? 'yes' : 'no'}; inner guard: ${d.innerSandbox ? (d.runtime === 'runsc' ? "yes (gVisor's own namespaces)" : 'yes (seccomp relaxed for nested namespaces)') : 'no'}`,
      ],
      ['Runtime', d.runtime === 'runsc' ? 'runsc (gVisor)' : d.runtime],
      ['Docker socket', d.dockerSocket ? 'YES: the agent can take root on the host' : 'no'],
      [
        'Own Docker engine',
        d.docker
          ? `yes (rootless Podman inside, volume ${d.dockerVolume}${d.dockerDiskBytes !== null ? `, ${formatBytes(d.dockerDiskBytes)}` : ''})`
          : 'no',
      ],
      ['sbx version', d.sbxVersion ?? '?'],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    for (const [key, value] of rows)
      this.log(`${`${key}:`.padEnd(width + 2)}${value.replaceAll('\n', `\n${' '.repeat(width + 2)}`)}`);
    return d;
  }
}
