import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { readSecretInput } from '../../src/cli/terminal.js';
import type { SecretView } from '../../src/config/secrets.js';
import { setSecret } from '../../src/sandbox/secrets.js';

export default class SecretSet extends BaseCommand {
  static override args = {
    name: Args.string({
      description: 'The secret, and the variable its placeholder is given in inside sandboxes.',
      required: true,
      ignoreStdin: true,
    }),
  };

  static override description =
    `Store a secret that sandboxes never see: they get a placeholder in the variable NAME, and the egress proxy puts the value into the --header of their requests to the --host hosts (and only those, whose TLS it terminates with sbx's own CA).

The value comes from standard input (never an argument, which shells keep in history and \`ps\` shows), from a host variable read at each sandbox start (--from-env), or from a command run on the host at each sandbox start (--command), so short-lived tokens stay fresh. It is kept in secrets.json in sbx's config folder, readable by you only. Sandboxes made from now on get it.`;

  static override enableJsonFlag = true;

  static override examples = [
    {
      command:
        'printf %s "$TOKEN" | <%= config.bin %> <%= command.id %> EXAMPLE_TOKEN --host api.example.com',
      description: 'Send it as "Authorization: Bearer <value>" to api.example.com.',
    },
    {
      command:
        "<%= config.bin %> <%= command.id %> GH_TOKEN --host github.com --host api.github.com --replace-only --command 'gh auth token'",
      description:
        "gh's token, fresh at every sandbox start, for gh and git push over HTTPS (git's credential helper inside answers the placeholder).",
    },
    {
      command:
        '<%= config.bin %> <%= command.id %> SERVICE_KEY --host api.service.test --header x-api-key --format "{}" --from-env SERVICE_KEY',
      description: 'A key header with the bare value, taken from the host variable when a sandbox starts.',
    },
  ];

  static override flags = {
    command: Flags.string({
      description: 'A command run on the host (by sh) at each sandbox start; what it prints is the value.',
      exclusive: ['from-env'],
    }),
    format: Flags.string({
      default: 'Bearer {}',
      description: 'The header value; {} stands for the secret.',
    }),
    'from-env': Flags.string({
      description: 'A host variable whose value is read at each sandbox start (it is not stored).',
      exclusive: ['command'],
    }),
    header: Flags.string({ default: 'Authorization', description: 'The request header that carries it.' }),
    host: Flags.string({
      description:
        'A host it goes to, on port 443 unless a port is given: api.example.com, *.example.com, api.example.com:8443 (repeatable).',
      multiple: true,
      required: true,
    }),
    query: Flags.string({
      description:
        'A query parameter that may carry the placeholder too (e.g. key): it is replaced there as well.',
    }),
    'replace-only': Flags.boolean({
      description:
        "Only replace the placeholder where a request carries it; never add the header to a request without it (GitHub's git and web endpoints refuse a Bearer token).",
    }),
  };

  static override summary = 'Store a secret the egress proxy injects for sandboxes.';

  async run(): Promise<SecretView> {
    const { args, flags } = await this.parse(SecretSet);
    const source = flags['from-env']
      ? { kind: 'env' as const, env: flags['from-env'] }
      : flags.command !== undefined
        ? { kind: 'command' as const, command: flags.command }
        : { kind: 'stdin' as const, value: await readSecretInput(args.name) };
    const { secret, warnings } = setSecret({
      name: args.name,
      hosts: flags.host,
      header: flags.header,
      format: flags.format,
      source,
      query: flags.query,
      replaceOnly: flags['replace-only'],
    });
    for (const w of warnings) this.warn(w);
    if (!this.jsonEnabled())
      this.log(
        `${secret.name} -> ${secret.hosts.join(' ')} (${secret.header}: ${secret.format}), ${secret.source}`,
      );
    return secret;
  }
}
