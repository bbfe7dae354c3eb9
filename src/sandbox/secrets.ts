/**
 * `sbx secret`: secrets held on the host and put into requests by the egress proxy, never given to a
 * sandbox (see src/config/secrets.ts for the store, src/network/egress-secrets.ts for the binding).
 */
import type { AgentSpec } from '../agents/registry.js';
import type { SbxConfig } from '../config/config.js';
import {
  headerProblem,
  readSecrets,
  removeSecret,
  type SecretView,
  type StoredSecret,
  secretNameProblem,
  viewOfSecret,
  writeSecrets,
} from '../config/secrets.js';
import type { SecretBinding } from '../network/egress-secrets.js';
import { decideHost, matches, type Policy, patternProblem, requestRuleHost } from '../network/policy.js';
import { SbxError, usageError } from '../shared/errors.js';

export function hostProblem(host: string): string | undefined {
  if (host === '*') return 'a secret goes to named hosts only, not to every host';
  const problem = patternProblem(host, 'allow');
  if (problem) return problem;
  return undefined;
}

/** Checks a secret before it is stored: each problem is an error naming the value and the fix. */
export function checkSecret(secret: StoredSecret, others: StoredSecret[]): void {
  const nameProblem = secretNameProblem(secret.name);
  if (nameProblem)
    throw usageError(
      `"${secret.name}" is not a valid secret name: ${nameProblem}.`,
      'For example: sbx secret set GITHUB_TOKEN --host api.github.com --format "Bearer {}".',
    );
  if (secret.hosts.length === 0)
    throw usageError(
      `The secret ${secret.name} needs a host to go to.`,
      'Add --host api.example.com (repeatable).',
    );
  for (const host of secret.hosts) {
    const problem = hostProblem(host);
    if (problem)
      throw usageError(
        `--host ${host} is not a host pattern: ${problem}.`,
        'Give api.example.com or *.example.com.',
      );
  }
  const header = headerProblem(secret.header);
  if (header)
    throw usageError(
      `--header ${secret.header} cannot carry a secret: ${header}.`,
      'Give a header name such as Authorization or x-api-key.',
    );
  if (secret.query !== undefined && !/^[A-Za-z0-9_.-]+$/.test(secret.query))
    throw usageError(`--query ${secret.query} is not a query parameter name.`, 'For example: --query key.');
  if (secret.format.split('{}').length !== 2)
    throw usageError(
      `--format "${secret.format}" must hold {} exactly once, where the value goes.`,
      'For example: --format "Bearer {}".',
    );
  if (secret.source.kind === 'env' && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(secret.source.env))
    throw usageError(
      `--from-env ${secret.source.env} is not a variable name.`,
      'Give the name of a variable set on the host, e.g. --from-env GITHUB_TOKEN.',
    );
  if (secret.source.kind === 'command' && !secret.source.command.trim())
    throw usageError(
      '--command is empty.',
      "Give a command that prints the value, e.g. --command 'gh auth token'.",
    );
  if (secret.source.kind === 'stdin' && !secret.source.value)
    throw usageError(
      `The value of ${secret.name} read from standard input is empty.`,
      `Pipe it in: printf %s "$TOKEN" | sbx secret set ${secret.name} --host HOST (or use --from-env / --command).`,
    );
  for (const other of others) {
    if (other.name === secret.name || other.header !== secret.header) continue;
    const shared = secret.hosts.find((h) => other.hosts.includes(h));
    if (shared)
      throw new SbxError(
        'conflict',
        `The secret ${other.name} already goes to ${shared} in the header ${secret.header}; two values for one header cannot both be injected.`,
        {
          hint: `Remove it first (sbx secret rm ${other.name}), or bind this one to another header or host.`,
        },
      );
  }
}

/** Stores (or replaces) a secret, hosts and header as typed; returns what `secret ls` shows of it. Bad input stores nothing. */
export function setSecret(req: StoredSecret): { secret: SecretView; warnings: string[] } {
  const secret: StoredSecret = {
    name: req.name,
    hosts: req.hosts.map((h) => h.toLowerCase()),
    header: req.header.toLowerCase(),
    format: req.format,
    source: req.source,
    ...(req.query ? { query: req.query } : {}),
    ...(req.replaceOnly ? { replaceOnly: true } : {}),
  };
  const all = readSecrets();
  checkSecret(secret, all);
  writeSecrets(
    [...all.filter((s) => s.name !== secret.name), secret].sort((a, b) => a.name.localeCompare(b.name)),
  );
  const warnings =
    req.source.kind === 'env' && !process.env[req.source.env]
      ? [`${req.source.env} is not set here; sandboxes started without it set will not start (sbx says so).`]
      : [];
  return {
    secret: viewOfSecret(secret),
    warnings: [
      ...warnings,
      'sandboxes made from now on get it; one that exists gets it when it is made again (sbx rm, then sbx run).',
    ],
  };
}

export const listSecrets = (): SecretView[] => readSecrets().map(viewOfSecret);

export const deleteSecret = (name: string): SecretView => viewOfSecret(removeSecret(name));

/**
 * The secrets a new sandbox gets: every stored one, plus its agent's API keys set on the host (unless
 * config agentKeys is env, or a stored secret already covers that variable, host and header).
 */
export function sandboxSecrets(
  agent: AgentSpec,
  config: SbxConfig,
  env: NodeJS.ProcessEnv = process.env,
): SecretBinding[] {
  const stored: SecretBinding[] = readSecrets().map((s) => ({ ...s, origin: 'store' }));
  if (config.agentKeys === 'env') return stored;
  const bindings = [...stored];
  for (const key of agent.injectedKeys ?? []) {
    if (!env[key.env]) continue;
    // Agent keys may share a host and header (GH_TOKEN and GITHUB_TOKEN): each replaces its own
    // placeholder. Only a stored secret takes a key's place; one of another name covering the key's
    // host and header lends it its placeholder, so the key itself never goes in.
    if (stored.some((b) => b.name === key.env)) continue;
    const cover = stored.find((b) => b.header === key.header && b.hosts.some((h) => key.hosts.includes(h)));
    if (cover) cover.aliases = [...(cover.aliases ?? []), key.env];
    else
      bindings.push({
        name: key.env,
        hosts: key.hosts,
        header: key.header,
        format: key.format,
        source: { kind: 'env', env: key.env },
        origin: 'agent',
        ...(key.query ? { query: key.query } : {}),
        ...(key.replaceOnly ? { replaceOnly: true } : {}),
      });
  }
  return bindings;
}

/** The agent keys passed into a sandbox as they are (config agentKeys env): said on every run. */
export function agentKeysWarning(
  agent: AgentSpec,
  config: SbxConfig,
  env: NodeJS.ProcessEnv = process.env,
  bound: string[] = [],
): string[] {
  if (config.agentKeys !== 'env') return [];
  const passed = (agent.injectedKeys ?? []).map((k) => k.env).filter((k) => env[k] && !bound.includes(k));
  return passed.length
    ? [
        `config agentKeys is env, so ${passed.join(', ')} ${passed.length > 1 ? 'are' : 'is'} passed into the sandbox, where the agent and anything it runs can read ${passed.length > 1 ? 'them' : 'it'}; \`sbx config unset agentKeys\` keeps keys outside (the proxy injects them).`,
      ]
    : [];
}

/** Secrets bound to hosts the sandbox's policy refuses: they will never be used. */
export function unusedSecretWarnings(bindings: SecretBinding[], policy: Policy): string[] {
  return bindings.flatMap((b) =>
    b.hosts
      .filter((h) => {
        const [name = '', port = '443'] = h.split(':');
        return !decideHost(policy, name.replace(/^\*\./, 'x.'), Number(port)).allowed;
      })
      .map(
        (h) =>
          `the secret ${b.name} goes to ${h}, which this sandbox's network policy refuses: it will never be used (allow the host, e.g. --allow-host ${h}).`,
      ),
  );
}

/** Request rules naming hosts no secret is bound to: sbx does not see those requests, so they apply to nothing. */
export function unterminatedRuleWarnings(rules: string[], bindings: SecretBinding[]): string[] {
  const terminated = bindings.flatMap((b) => b.hosts.map((h) => h.split(':')[0]!));
  return rules
    .filter((rule) => {
      const host = requestRuleHost(rule);
      return !terminated.some((t) => t === host || matches(t, host.replace(/^\*\./, 'x.'), 0));
    })
    .map(
      (rule) =>
        `the request rule "${rule}" names a host whose TLS sbx does not terminate (no secret is bound to it), so it applies to nothing there: that host keeps host-level rules only.`,
    );
}
