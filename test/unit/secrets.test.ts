import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { getAgent } from '../../src/agents/registry.js';
import { issueLeaf, makeCa } from '../../src/config/egress-ca.js';
import { readSecrets, resolveSecret, type StoredSecret, writeSecrets } from '../../src/config/secrets.js';
import { gitCredentialEnv } from '../../src/network/egress-secrets.js';
import {
  decideRequest,
  type Injection,
  injectHeaders,
  injectionsFor,
  injectQuery,
  type Policy,
  requestRuleProblem,
} from '../../src/network/policy.js';
import {
  agentKeysWarning,
  checkSecret,
  sandboxSecrets,
  unusedSecretWarnings,
} from '../../src/sandbox/secrets.js';
import { execEnv } from '../../src/sandbox/spec.js';
import { SbxError } from '../../src/shared/errors.js';

const injection = (over: Partial<Injection>): Injection => ({
  name: 'TOKEN',
  hosts: ['api.example.test'],
  header: 'authorization',
  format: 'Bearer {}',
  placeholder: 'sbx-secret-token-abc',
  value: 'REAL',
  ...over,
});

const policy = (over: Partial<Policy>): Policy => ({
  mode: 'allow',
  allow: [],
  deny: [],
  hostAddresses: [],
  ...over,
});

describe('header injection', () => {
  it('replaces the placeholder in the bound header, sets an absent one, leaves a foreign value alone', () => {
    const s = [injection({})];
    assert.deepEqual(injectHeaders({ authorization: 'Bearer sbx-secret-token-abc' }, s), {
      headers: { authorization: 'Bearer REAL' },
      injected: ['TOKEN'],
    });
    assert.deepEqual(injectHeaders({ accept: '*/*' }, s), {
      headers: { accept: '*/*', authorization: 'Bearer REAL' },
      injected: ['TOKEN'],
    });
    assert.deepEqual(injectHeaders({ authorization: 'Bearer users-own' }, s), {
      headers: { authorization: 'Bearer users-own' },
      injected: [],
    });
    // The placeholder in another header is not swapped: only the configured header carries the value.
    const other = injectHeaders({ 'x-other': 'sbx-secret-token-abc', authorization: 'x' }, s);
    assert.equal(other.headers['x-other'], 'sbx-secret-token-abc');
  });

  it('never adds a replace-only secret to a request without its header (GitHub refuses a Bearer token there)', () => {
    const s = [injection({ replaceOnly: true })];
    assert.deepEqual(injectHeaders({ accept: '*/*' }, s), { headers: { accept: '*/*' }, injected: [] });
    assert.deepEqual(injectHeaders({ authorization: 'token sbx-secret-token-abc' }, s), {
      headers: { authorization: 'token REAL' },
      injected: ['TOKEN'],
    });
  });

  it('replaces the placeholder inside Basic credentials (git with its credential helper), re-encoded', () => {
    const s = [injection({})];
    const basic = (text: string) => `Basic ${Buffer.from(text).toString('base64')}`;
    assert.deepEqual(injectHeaders({ authorization: basic('x-access-token:sbx-secret-token-abc') }, s), {
      headers: { authorization: basic('x-access-token:REAL') },
      injected: ['TOKEN'],
    });
    assert.deepEqual(injectHeaders({ authorization: basic('me:my-own-password') }, s), {
      headers: { authorization: basic('me:my-own-password') },
      injected: [],
    });
  });

  it("replaces the placeholder in the secret's query parameter (Google's key=), nowhere else in the URL", () => {
    const s = [injection({ query: 'key', value: 'R/+=' })];
    assert.deepEqual(injectQuery('/v1/models?alt=sse&key=sbx-secret-token-abc', s), {
      target: '/v1/models?alt=sse&key=R%2F%2B%3D',
      injected: ['TOKEN'],
    });
    assert.deepEqual(injectQuery('/sbx-secret-token-abc?other=sbx-secret-token-abc', s), {
      target: '/sbx-secret-token-abc?other=sbx-secret-token-abc',
      injected: [],
    });
    assert.deepEqual(injectQuery('/no-query', s), { target: '/no-query', injected: [] });
    assert.deepEqual(
      injectQuery('/x?key=sbx-secret-token-abc', [injection({})]).injected,
      [],
      'no query bound',
    );
  });

  it('applies only to the bound hosts (exact or *.domain)', () => {
    const p = policy({ secrets: [injection({ hosts: ['api.example.test', '*.wild.test'] })] });
    assert.equal(injectionsFor(p, 'api.example.test', 443).length, 1);
    assert.equal(injectionsFor(p, 'API.example.test', 443).length, 1);
    assert.equal(injectionsFor(p, 'x.wild.test', 443).length, 1);
    assert.equal(injectionsFor(p, 'wild.test', 443).length, 0);
    assert.equal(injectionsFor(p, 'example.test', 443).length, 0);
    assert.equal(injectionsFor(policy({}), 'api.example.test', 443).length, 0);
  });

  it('applies to port 443 only, unless the binding names a port', () => {
    const p = policy({ secrets: [injection({ hosts: ['api.example.test', 'alt.example.test:8443'] })] });
    assert.equal(injectionsFor(p, 'api.example.test', 8443).length, 0);
    assert.equal(injectionsFor(p, 'api.example.test', 80).length, 0);
    assert.equal(injectionsFor(p, 'alt.example.test', 8443).length, 1);
    assert.equal(injectionsFor(p, 'alt.example.test', 443).length, 0);
  });
});

describe('request rules', () => {
  const p = policy({
    requestRules: [
      'GET api.example.test/repos/my-org/**',
      'post api.example.test/v1/*/items',
      '* *.wild.test/**',
    ],
  });
  it('let through only matching requests on a host a rule names; other hosts are not concerned', () => {
    assert.deepEqual(decideRequest(p, 'api.example.test', 'GET', '/repos/my-org/a/b?x=1'), {
      allowed: true,
      rule: 'allow-request GET api.example.test/repos/my-org/**',
    });
    assert.equal(decideRequest(p, 'api.example.test', 'POST', '/repos/my-org/a').allowed, false);
    assert.equal(decideRequest(p, 'api.example.test', 'GET', '/repos/other-org/a').allowed, false);
    assert.equal(decideRequest(p, 'api.example.test', 'POST', '/v1/x/items').allowed, true);
    assert.equal(
      decideRequest(p, 'api.example.test', 'POST', '/v1/x/y/items').allowed,
      false,
      '* is one segment',
    );
    assert.equal(decideRequest(p, 'a.wild.test', 'DELETE', '/anything').allowed, true);
    assert.equal(decideRequest(p, 'elsewhere.test', 'DELETE', '/x').allowed, true);
    assert.match(
      decideRequest(p, 'api.example.test', 'DELETE', '/x').rule,
      /no request rule allows it \(rules for api\.example\.test: GET api\.example\.test\/repos\/my-org\/\*\*; post/,
    );
    // Dots and other regular-expression characters in a path are literal.
    const dots = policy({ requestRules: ['GET a.test/v1.0/x'] });
    assert.equal(decideRequest(dots, 'a.test', 'GET', '/v1.0/x').allowed, true);
    assert.equal(decideRequest(dots, 'a.test', 'GET', '/v1x0/x').allowed, false);
  });

  it('refuses malformed rules', () => {
    assert.equal(requestRuleProblem('GET api.example.test/**'), undefined);
    assert.match(requestRuleProblem('api.example.test/**')!, /METHOD HOST\/PATH/);
    assert.match(requestRuleProblem('FETCH a.test/x')!, /not a method/);
    assert.match(requestRuleProblem('GET a.test')!, /add the path/);
    assert.match(requestRuleProblem('GET https://a.test/x')!, /./);
  });
});

describe('secret checks', () => {
  const secret = (over: Partial<StoredSecret>): StoredSecret => ({
    name: 'GOOD',
    hosts: ['api.example.test'],
    header: 'authorization',
    format: 'Bearer {}',
    source: { kind: 'stdin', value: 'v' },
    ...over,
  });
  const refuses = (over: Partial<StoredSecret>, message: RegExp, others: StoredSecret[] = []) =>
    assert.throws(
      () => checkSecret(secret(over), others),
      (err: unknown) => err instanceof SbxError && message.test(err.message) && err.hint !== undefined,
    );

  it('refuses bad names, hosts, headers, formats and sources', () => {
    checkSecret(secret({}), []);
    refuses({ name: 'a-b' }, /not a valid secret name/);
    for (const name of ['PATH', 'HTTPS_PROXY', 'NODE_OPTIONS', 'SBX_UID', 'LD_PRELOAD'])
      refuses({ name }, /a variable the sandbox itself needs/);
    refuses({ hosts: [] }, /needs a host/);
    refuses({ hosts: ['a.test:0'] }, /port is a number/);
    checkSecret(secret({ hosts: ['a.test:8443'] }), []);
    refuses({ hosts: ['*'] }, /named hosts only/);
    refuses({ header: 'x:y' }, /letters, digits/);
    refuses({ header: 'Proxy-Authorization' }, /belongs to the connection/);
    refuses({ format: '{} {}' }, /exactly once/);
    refuses({ source: { kind: 'stdin', value: '' } }, /empty/);
    refuses({ source: { kind: 'command', command: ' ' } }, /--command is empty/);
    refuses({ source: { kind: 'env', env: 'A-B' } }, /not a variable name/);
  });

  it('refuses a second secret for one host and header; replacing a secret of the same name is fine', () => {
    const first = secret({ name: 'FIRST' });
    refuses({ name: 'SECOND' }, /FIRST already goes to api\.example\.test/, [first]);
    checkSecret(secret({ name: 'SECOND', header: 'x-api-key' }), [first]);
    checkSecret(secret({ name: 'FIRST', format: '{}' }), [first]);
  });

  it('warns of a secret whose host the policy refuses', () => {
    const b = { ...secret({}), origin: 'store' as const };
    assert.equal(unusedSecretWarnings([b], policy({})).length, 0);
    assert.match(
      unusedSecretWarnings([b], policy({ mode: 'deny' }))[0]!,
      /GOOD goes to api\.example\.test, which this sandbox's network policy refuses/,
    );
  });
});

describe('the store and values', () => {
  it('writes a file only its owner can read, and reads it back', () => {
    process.env.SBX_CONFIG_DIR = mkdtempSync(join(tmpdir(), 'sbx-unit-secrets-'));
    const file = join(process.env.SBX_CONFIG_DIR, 'secrets.json');
    assert.deepEqual(readSecrets(file), []);
    const s: StoredSecret = {
      name: 'A',
      hosts: ['a.test'],
      header: 'authorization',
      format: '{}',
      source: { kind: 'stdin', value: 'x' },
    };
    writeSecrets([s], file);
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(readSecrets(file), [s]);
    delete process.env.SBX_CONFIG_DIR;
  });

  it('resolves values from stdin, a host variable or a command; failures name their source', async () => {
    assert.equal(await resolveSecret({ name: 'A', source: { kind: 'stdin', value: 'v' } }), 'v');
    assert.equal(
      await resolveSecret({ name: 'A', source: { kind: 'env', env: 'X' } }, { X: 'from-env' }),
      'from-env',
    );
    await assert.rejects(
      resolveSecret({ name: 'A', source: { kind: 'env', env: 'X' } }, {}),
      /X, which is not set/,
    );
    assert.equal(await resolveSecret({ name: 'A', source: { kind: 'command', command: 'echo out' } }), 'out');
    await assert.rejects(
      resolveSecret({ name: 'A', source: { kind: 'command', command: 'echo why >&2; exit 4' } }),
      /`echo why >&2; exit 4`, exited with 4: why/,
    );
    await assert.rejects(
      resolveSecret({ name: 'A', source: { kind: 'command', command: 'true' } }),
      /printed nothing/,
    );
  });
});

describe("agents' keys", () => {
  const claude = getAgent('claude');
  it('are bound by default when set on the host, unless config agentKeys is env (then a warning)', () => {
    process.env.SBX_CONFIG_DIR = mkdtempSync(join(tmpdir(), 'sbx-unit-secrets-'));
    const env = { ANTHROPIC_API_KEY: 'k', CLAUDE_CODE_OAUTH_TOKEN: 't', ANTHROPIC_AUTH_TOKEN: 'a' };
    const bound = sandboxSecrets(claude, {}, env);
    assert.deepEqual(
      bound.map((b) => [b.name, b.header, b.format]),
      [
        ['ANTHROPIC_API_KEY', 'x-api-key', '{}'],
        ['CLAUDE_CODE_OAUTH_TOKEN', 'authorization', 'Bearer {}'],
        ['ANTHROPIC_AUTH_TOKEN', 'authorization', 'Bearer {}'],
      ],
      'a second Authorization key for the same host is bound too (never passed in as it is)',
    );
    const copilot = sandboxSecrets(getAgent('copilot'), {}, { GH_TOKEN: 'g', GITHUB_TOKEN: 'h' });
    assert.deepEqual(
      copilot.map((b) => b.name),
      ['GH_TOKEN', 'GITHUB_TOKEN'],
    );
    assert.ok(
      copilot.every(
        (b) => b.hosts.includes('github.com') && b.hosts.includes('api.githubcopilot.com') && b.replaceOnly,
      ),
    );
    // Inside, git's credential helper answers each bound https host with the first secret's placeholder.
    const git = gitCredentialEnv(copilot);
    assert.equal(git[0], 'GIT_CONFIG_COUNT=6');
    assert.equal(git[1], 'GIT_CONFIG_KEY_0=credential.https://github.com.helper');
    assert.match(
      git[2]!,
      /^GIT_CONFIG_VALUE_0=!f\(\) \{ test "\$1" = get && printf 'username=x-access-token\\npassword=%s\\n' "\$GH_TOKEN"; \}; f$/,
    );
    assert.deepEqual(gitCredentialEnv([{ name: 'K', hosts: ['a.test'], header: 'x-api-key' }]), []);
    // A stored secret of another name covering a key's host and header lends the key its placeholder.
    writeSecrets([
      {
        name: 'MY_KEY',
        hosts: ['api.anthropic.com'],
        header: 'x-api-key',
        format: '{}',
        source: { kind: 'env', env: 'MY_KEY' },
      },
    ]);
    const covered = sandboxSecrets(claude, {}, { ANTHROPIC_API_KEY: 'k' });
    assert.deepEqual(
      covered.map((b) => [b.name, b.aliases]),
      [['MY_KEY', ['ANTHROPIC_API_KEY']]],
    );
    writeSecrets([]);
    assert.deepEqual(sandboxSecrets(claude, {}, {}), []);
    assert.deepEqual(sandboxSecrets(claude, { agentKeys: 'env' }, env), []);
    assert.equal(agentKeysWarning(claude, {}, env).length, 0);
    assert.match(agentKeysWarning(claude, { agentKeys: 'env' }, env)[0]!, /passed into the sandbox/);
    delete process.env.SBX_CONFIG_DIR;
  });

  it("keep the placeholder in the sandbox: a bound key's host value is not passed to an exec", () => {
    const env = execEnv({
      agent: claude,
      user: undefined,
      term: undefined,
      hostEnv: { ANTHROPIC_API_KEY: 'REAL', ANTHROPIC_BASE_URL: 'https://x.test' },
      vars: [],
      bound: ['ANTHROPIC_API_KEY'],
    });
    assert.ok(!env.some((e) => e.includes('REAL')));
    assert.ok(env.includes('ANTHROPIC_BASE_URL=https://x.test'));
  });
});

describe("sbx's CA", () => {
  it('issues certificates for the bound hosts that verify against it', async () => {
    const ca = await makeCa('unit CA');
    const leaf = await issueLeaf(ca, ['api.example.test', '*.wild.test']);
    const caCert = new X509Certificate(ca.cert);
    const cert = new X509Certificate(leaf.cert);
    assert.ok(cert.verify(caCert.publicKey));
    assert.ok(cert.checkIssued(caCert));
    assert.equal(cert.checkHost('api.example.test'), 'api.example.test');
    assert.equal(cert.checkHost('x.wild.test'), '*.wild.test');
    assert.equal(cert.checkHost('other.test'), undefined);
    assert.ok(caCert.ca);
    assert.ok(!cert.ca);
  });
});
