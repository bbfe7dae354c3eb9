/**
 * Secrets bound to a sandbox: the sandbox gets placeholders (in variables named after the secrets)
 * and sbx's CA certificate; the egress proxy gets, in that sandbox's policy file only, the values,
 * a certificate for their hosts signed by sbx's CA, and the extra CAs it verifies those hosts with.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { readConfig } from '../config/config.js';
import { egressCa, issueLeaf } from '../config/egress-ca.js';
import { readSecrets, resolveSecret, type SecretSource } from '../config/secrets.js';
import { extraCaCerts } from '../config/tls-proxy.js';
import { currentEndpoint } from '../engine/connection.js';
import { execCapture } from '../engine/exec.js';
import { putArchive } from '../engine/volumes.js';
import type { Injection, Policy } from './policy.js';

/** A secret to bind to a new sandbox: one of the store's, or an agent's key from the host's variable. */
export interface SecretBinding {
  name: string;
  hosts: string[];
  header: string;
  format: string;
  source: SecretSource;
  origin: 'store' | 'agent';
  query?: string | undefined;
  replaceOnly?: boolean | undefined;
  /** Agent key variables this secret stands in for (a stored secret covering their host and header): they get its placeholder. */
  aliases?: string[] | undefined;
}

/** What a sandbox's policy carries for its secrets (see Policy). */
export type SecretPolicy = Required<Pick<Policy, 'secrets' | 'tls' | 'trust'>>;

/** Where sbx's CA is put inside a sandbox, and the system bundle every client is pointed at. */
const CA_FILE = 'sbx-egress-ca.crt';
const CA_FOLDER = '/usr/local/share/ca-certificates';
export const SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The variables Python, OpenSSL, curl and git read to find CAs: all pointed at the system's bundle. */
export const CA_ENV = ['SSL_CERT_FILE', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'GIT_SSL_CAINFO'].map(
  (v) => `${v}=${SYSTEM_BUNDLE}`,
);

/** The engine's key for its CA: a hash of its address, so each engine has a CA of its own. */
export const engineKey = () => createHash('sha256').update(currentEndpoint().url).digest('hex').slice(0, 12);

/** The extra CAs (SBX_CA_CERTS, config caCerts, the host's local ones) the proxy verifies upstreams with. */
const upstreamTrust = async () => extraCaCerts((await readConfig()).caCerts).map((c) => c.pem);

/**
 * Git configuration, in the variables git reads it from (GIT_CONFIG_COUNT/KEY_n/VALUE_n, git 2.31+,
 * so no image needs changing): for each https host an Authorization secret is bound to, a
 * credential helper that answers with the secret's placeholder (`x-access-token:PLACEHOLDER`, which
 * the proxy replaces inside the Basic header), so `git push https://HOST/…` authenticates.
 */
export function gitCredentialEnv(secrets: Array<Pick<Injection, 'name' | 'hosts' | 'header'>>): string[] {
  const helpers = new Map<string, string>();
  for (const s of secrets)
    if (s.header === 'authorization')
      for (const host of s.hosts)
        if (!helpers.has(host))
          helpers.set(
            host,
            `!f() { test "$1" = get && printf 'username=x-access-token\\npassword=%s\\n' "$${s.name}"; }; f`,
          );
  if (helpers.size === 0) return [];
  return [
    `GIT_CONFIG_COUNT=${helpers.size}`,
    ...[...helpers].flatMap(([host, helper], i) => [
      `GIT_CONFIG_KEY_${i}=credential.https://${host}.helper`,
      `GIT_CONFIG_VALUE_${i}=${helper}`,
    ]),
  ];
}

/** The names sbx's certificate must cover: every secret's hosts, without their ports. */
const certHosts = (secrets: Array<Pick<Injection, 'hosts'>>) => [
  ...new Set(secrets.flatMap((s) => s.hosts.map((h) => h.split(':')[0]!))),
];

const placeholderOf = (name: string) =>
  `sbx-secret-${name.toLowerCase().replace(/_/g, '-')}-${randomBytes(12).toString('hex')}`;

/**
 * The policy part and the sandbox's variables for its secrets. Values are resolved now (a
 * --command runs; its failure is an error and nothing is made). Placeholders are kept from `previous`
 * (a restart), so the sandbox's variables stay valid.
 */
export async function secretPolicy(
  bindings: SecretBinding[],
  previous: Injection[] = [],
): Promise<{ policy: SecretPolicy; env: string[] } | undefined> {
  if (bindings.length === 0) return undefined;
  const secrets: Array<Injection & { origin: SecretBinding['origin'] }> = [];
  for (const b of bindings)
    secrets.push({
      name: b.name,
      hosts: b.hosts,
      header: b.header.toLowerCase(),
      format: b.format,
      origin: b.origin,
      ...(b.query ? { query: b.query } : {}),
      ...(b.replaceOnly ? { replaceOnly: true } : {}),
      placeholder: previous.find((p) => p.name === b.name)?.placeholder ?? placeholderOf(b.name),
      value: await resolveSecret(b),
    });
  const ca = await egressCa(engineKey());
  const tls = await issueLeaf(ca, certHosts(secrets));
  const trust = await upstreamTrust();
  return {
    policy: { secrets, tls, trust },
    env: [
      ...secrets.map((s) => `${s.name}=${s.placeholder}`),
      ...bindings.flatMap((b, i) => (b.aliases ?? []).map((alias) => `${alias}=${secrets[i]!.placeholder}`)),
      ...CA_ENV,
      ...gitCredentialEnv(secrets),
    ],
  };
}

/**
 * At a sandbox's start: its secrets' values anew (a --command runs again, so short-lived tokens
 * stay fresh) and a fresh certificate. A store secret removed since stays out; an agent key no
 * longer set on the host keeps its last value.
 */
export async function refreshSecretPolicy(policy: Policy): Promise<SecretPolicy | undefined> {
  const current = (policy.secrets ?? []) as Array<Injection & { origin?: 'store' | 'agent' }>;
  if (current.length === 0) return undefined;
  const stored = readSecrets();
  const bindings: SecretBinding[] = [];
  const kept: Injection[] = [];
  for (const s of current) {
    if (s.origin === 'agent') {
      if (process.env[s.name]) bindings.push({ ...s, source: { kind: 'env', env: s.name }, origin: 'agent' });
      else kept.push(s);
      continue;
    }
    const found = stored.find((x) => x.name === s.name);
    if (found) bindings.push({ ...found, origin: 'store' });
  }
  const fresh = await secretPolicy(bindings, current);
  const secrets = [...(fresh?.policy.secrets ?? []), ...kept];
  if (secrets.length === 0) return { secrets: [], tls: policy.tls ?? { cert: '', key: '' }, trust: [] };
  const ca = await egressCa(engineKey());
  return {
    secrets,
    tls: fresh?.policy.tls ?? (await issueLeaf(ca, certHosts(secrets))),
    trust: await upstreamTrust(),
  };
}

/** Puts sbx's CA certificate into a created sandbox (before it starts), where update-ca-certificates finds it. */
export async function putCa(containerId: string): Promise<void> {
  const { pack } = await import('tar-stream');
  const archive = pack();
  archive.entry({ name: CA_FILE, mode: 0o644 }, (await egressCa(engineKey())).cert);
  archive.finalize();
  await putArchive(containerId, CA_FOLDER, archive as unknown as Readable);
}

/**
 * Adds sbx's CA to a started sandbox's system store (which NODE_EXTRA_CA_CERTS and CA_ENV point at).
 * An image without update-ca-certificates (a custom one) gets a warning: its clients will refuse
 * the hosts sbx injects into until they trust the CA.
 */
export async function trustCa(containerId: string): Promise<string | undefined> {
  const { code, stdout, stderr } = await execCapture(containerId, [
    'sh',
    '-c',
    'update-ca-certificates >/dev/null',
  ]).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
  return code === 0
    ? undefined
    : `update-ca-certificates failed in the sandbox (exit ${code}: ${(stderr || stdout).trim().split('\n').slice(-1)[0]}), so its programs do not trust sbx's CA and requests to the hosts its secrets go to will fail; build the template FROM sbx/base, or install ca-certificates in it.`;
}
