import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  canonicalHost,
  decideAddress,
  decideHost,
  decideRequest,
  inSubnet,
  internalKind,
  matches,
  neverReached,
  type Policy,
  patternProblem,
  requestPath,
} from '../../src/network/policy.js';
import { checkPatterns, effectivePolicy, readSettings } from '../../src/network/settings.js';
import { denyReadMatches, fileGuards } from '../../src/sandbox/guards.js';

const policy = (over: Partial<Policy>): Policy => ({
  mode: 'allow',
  allow: [],
  deny: [],
  hostAddresses: [],
  ...over,
});

describe('host patterns', () => {
  it('match exact hosts, subdomains (not the apex) and ports', () => {
    assert.ok(matches('api.example.com', 'API.example.com', 443));
    assert.ok(matches('*.example.com', 'a.b.example.com', 443));
    assert.ok(!matches('*.example.com', 'example.com', 443));
    assert.ok(!matches('*.example.com', 'badexample.com', 443));
    assert.ok(matches('example.com:8443', 'example.com', 8443));
    assert.ok(!matches('example.com:8443', 'example.com', 443));
  });
  it('refuse schemes, paths, a bare * to allow, wildcards over a TLD, bad ports', () => {
    for (const [bad, list] of [
      ['https://example.com', 'allow'],
      ['example.com/path', 'allow'],
      ['*', 'allow'],
      ['*.com', 'deny'],
      ['example.com:0', 'allow'],
      ['exa mple.com', 'deny'],
      ['*.10.0.0.1', 'deny'],
    ] as const)
      assert.ok(patternProblem(bad, list), bad);
    for (const good of ['example.com', '*.example.com', 'example.com:8080', '10.0.0.5', 'localhost'])
      assert.equal(patternProblem(good, 'allow'), undefined, good);
    assert.throws(
      () => checkPatterns(['https://x.dev'], 'allow', '--allow-host'),
      /Invalid --allow-host "https:\/\/x.dev": give a host name, not a URL/,
    );
  });
});

describe('decisions', () => {
  it('deny beats allow; allow mode allows the rest, deny mode refuses it', () => {
    const p = policy({ allow: ['*.npmjs.org'], deny: ['registry.npmjs.org'] });
    assert.deepEqual(decideHost(p, 'registry.npmjs.org', 443), {
      allowed: false,
      rule: 'deny registry.npmjs.org',
      explicit: true,
    });
    assert.deepEqual(decideHost(p, 'www.npmjs.org', 443), {
      allowed: true,
      rule: 'allow *.npmjs.org',
      explicit: true,
    });
    assert.deepEqual(decideHost(p, 'example.org', 443), {
      allowed: true,
      rule: 'default allow',
      explicit: false,
    });
    assert.equal(decideHost({ ...p, mode: 'deny' }, 'example.org', 443).allowed, false);
  });
  it('internal addresses are refused unless the host was allowed by name', () => {
    for (const [ip, kind] of [
      ['10.1.2.3', 'private'],
      ['172.20.0.1', 'private'],
      ['192.168.1.1', 'private'],
      ['127.0.0.1', 'loopback'],
      ['169.254.169.254', 'cloud metadata'],
      ['169.254.1.1', 'link-local'],
      ['100.64.0.1', 'shared (CGNAT)'],
      ['::1', 'loopback'],
      ['fd00::1', 'private'],
      ['fe80::1', 'link-local'],
      ['::ffff:10.0.0.1', 'private'],
    ] as const)
      assert.equal(internalKind(ip), kind, ip);
    assert.equal(internalKind('104.16.1.1'), undefined);
    assert.equal(decideAddress(policy({}), '10.0.0.1', false).allowed, false);
    assert.equal(decideAddress(policy({}), '10.0.0.1', true).allowed, true);
    assert.deepEqual(decideAddress(policy({ hostAddresses: ['203.0.113.5'] }), '203.0.113.5', false), {
      allowed: false,
      rule: 'the host itself',
    });
  });
  it('tells which subnet an address is in', () => {
    assert.ok(inSubnet('172.18.0.5', '172.18.0.0/16'));
    assert.ok(!inSubnet('172.19.0.5', '172.18.0.0/16'));
    assert.ok(inSubnet('10.0.3.7', '10.0.3.0/24'));
    assert.ok(!inSubnet('::1', '10.0.3.0/24'));
  });
});

describe('every spelling of an address is one (a sandbox chooses the spelling)', () => {
  it('makes hosts canonical: IPv4 in any base or length, IPv6 in any form, mapped and NAT64 as IPv4', () => {
    for (const [text, host] of [
      ['2886795265', '172.17.0.1'],
      ['0254.0021.0.1', '172.17.0.1'],
      ['0xac110001', '172.17.0.1'],
      ['0xAC.0x11.0.1', '172.17.0.1'],
      ['172.17.1', '172.17.0.1'],
      ['127.1', '127.0.0.1'],
      ['0', '0.0.0.0'],
      ['[::ffff:ac11:1]', '172.17.0.1'],
      ['::ffff:172.17.0.1', '172.17.0.1'],
      ['0:0:0:0:0:ffff:ac11:1', '172.17.0.1'],
      ['::FFFF:AC11:0001', '172.17.0.1'],
      ['::ffff:0:ac11:1', '172.17.0.1'],
      ['::ac11:1', '172.17.0.1'],
      ['64:ff9b::a00:1', '10.0.0.1'],
      ['64:ff9b::10.0.0.1', '10.0.0.1'],
      ['0::0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['[::1]', '::1'],
      ['2001:DB8:0:0::1', '2001:db8::1'],
    ] as const)
      assert.deepEqual(canonicalHost(text), { kind: 'address', host }, text);
    assert.deepEqual(canonicalHost('API.Example.COM.'), { kind: 'name', host: 'api.example.com' });
    for (const bad of [
      'fe80::1%eth0',
      'example.123',
      'a..b',
      '-a.com',
      'a b',
      '',
      'x'.repeat(254),
      '1.2.3.4.5',
      '[::g]',
    ])
      assert.equal(canonicalHost(bad).kind, 'invalid', bad);
  });

  it('refuses internal addresses in every spelling, and only global unicast is public', () => {
    for (const text of [
      '::ffff:ac11:1',
      '::ffff:10.0.0.1',
      '::a00:1',
      '64:ff9b::a9fe:a9fe',
      '0x7f000001',
      '0177.0.0.1',
      '2130706433',
      '0.0.0.0',
      '::',
      '0::0',
      '::0:1',
      'fec0::1',
      '2002:a00:1::1',
      '2001:0:a00:1::1',
      'ff02::1',
      '224.0.0.1',
      '240.0.0.1',
      '255.255.255.255',
      '192.0.0.170',
    ])
      assert.ok(internalKind(text), text);
    assert.equal(internalKind('64:ff9b::a9fe:a9fe'), 'cloud metadata');
    assert.equal(internalKind('::ffff:127.0.0.1'), 'loopback');
    for (const text of [
      '104.16.1.1',
      '::ffff:6810:101',
      '2606:4700::1111',
      '64:ff9b::808:808',
      '203.0.113.80',
      '198.18.0.1',
    ])
      assert.equal(internalKind(text), undefined, text);
    assert.equal(decideAddress(policy({}), '172.17.0.1', false).allowed, false);
    assert.equal(
      decideAddress(policy({ hostAddresses: ['::ffff:172.17.0.1'] }), '172.17.0.1', false).rule,
      'the host itself',
    );
    assert.match(decideAddress(policy({}), '10.0.0.5', true).rule, /opens 10\.0\.0\.5 \(private\)/);
  });

  it('match patterns written in any spelling against the canonical host', () => {
    assert.ok(matches('0x0a000005', '10.0.0.5', 443));
    assert.ok(matches('10.0.0.5:8080', '10.0.0.5', 8080));
    const p = policy({ deny: ['203.0.113.7'] });
    assert.equal(
      decideHost(p, canonicalHost('3405803783').kind === 'address' ? '203.0.113.7' : '', 443).allowed,
      false,
    );
  });

  it('never reaches the proxy itself or a sandbox network, whatever the policy', () => {
    const own = ['10.213.0.2', '10.213.0.18', '172.17.0.3', '127.0.0.1', '::1'];
    const subnets = ['10.213.0.0/28', '10.213.0.16/28'];
    for (const a of [
      '127.0.0.1',
      '127.9.9.9',
      '::1',
      '::',
      '0.0.0.0',
      '10.213.0.18',
      '10.213.0.19',
      '172.17.0.3',
    ])
      assert.ok(neverReached(a, [...own, '0.0.0.0', '::'], subnets), a);
    assert.equal(neverReached('172.17.0.4', own, subnets), undefined);
    assert.equal(neverReached('104.16.1.1', own, subnets), undefined);
  });
});

describe('request rules decide on the path the upstream will see', () => {
  const p = policy({
    requestRules: ['GET api.example.test/repos/my-org/**', 'GET gl.test/api/projects/my-org%2F*/**'],
  });
  it('refuses dot segments, plain or encoded, backslashes and bad escapes where rules apply', () => {
    for (const path of [
      '/repos/my-org/../other-org/secrets',
      '/repos/my-org/%2e%2e/other-org/secrets',
      '/repos/my-org/%2E%2E/other-org',
      '/repos/my-org/.%2e/other-org',
      '/repos/my-org/..%2fother-org',
      '/repos/my-org%2f..%2fother-org',
      '/repos/my-org/./x',
      '/repos/my-org\\..\\other-org',
      '/repos/my-org/%5c..%5cother-org',
      '/repos/my-org/%zz',
      'repos/my-org/x',
      '/repos/my-org/x#frag',
      // Found by the red team: path parameters, double encoding, control characters, bad UTF-8.
      '/repos/my-org/..;/other-org/secrets',
      '/repos/my-org/..%3b/other-org',
      '/repos/my-org/%252e%252e/other-org',
      '/repos/my-org/..%00/other-org',
      '/repos/my-org/..%09/other-org',
      '/repos/my-org/%c0%ae%c0%ae/other-org',
      '/repos/my-org/%ef%bc%8e%ef%bc%8e/other-org',
      '/repos/my-org/x%ef%bc%8fy',
    ])
      assert.equal(decideRequest(p, 'api.example.test', 'GET', path).allowed, false, path);
  });
  it('matches the path with repeated slashes made one and encoded slashes decoded', () => {
    assert.equal(decideRequest(p, 'api.example.test', 'GET', '/repos//my-org/x').allowed, true);
    assert.equal(decideRequest(p, 'api.example.test', 'GET', '//repos/other-org/x').allowed, false);
    assert.equal(decideRequest(p, 'api.example.test', 'GET', '/repos%2fmy-org/x').allowed, true);
    assert.equal(decideRequest(p, 'gl.test', 'GET', '/api/projects/my-org%2Fapp/issues').allowed, true);
    assert.equal(decideRequest(p, 'gl.test', 'GET', '/api/projects/other%2Fapp/issues').allowed, false);
    assert.deepEqual(requestPath('/a//b/c?x=..//y'), { path: '/a/b/c', forward: '/a/b/c?x=..//y' });
    assert.equal(decideRequest(p, 'api.example.test', 'GET', '/repos/%6dy-org/x').allowed, true);
    assert.equal(decideRequest(p, 'api.example.test', 'GET', '/repos/my-org/a%20b').allowed, true);
    // No rule for a host: the path is not this layer's business.
    assert.equal(decideRequest(p, 'elsewhere.test', 'GET', '/../x').allowed, true);
  });
});

describe('settings files and the effective policy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-settings-'));
  const file = (name: string, content: string) => {
    writeFileSync(join(dir, name), content);
    return join(dir, name);
  };
  it('merge with flags; deny mode adds the agent hosts', () => {
    const settings = readSettings(
      file('ok.json', JSON.stringify({ network: { allowedDomains: ['a.dev'], deniedDomains: ['b.dev'] } })),
    );
    assert.deepEqual(
      effectivePolicy({
        mode: 'deny',
        allowFlags: ['c.dev'],
        blockFlags: ['d.dev'],
        agentHosts: ['api.agent.dev'],
        settings: [settings, {}],
        hostAddresses: [],
      }),
      {
        mode: 'deny',
        allow: ['api.agent.dev', 'a.dev', 'c.dev'],
        deny: ['b.dev', 'd.dev'],
        hostAddresses: [],
      },
    );
    assert.deepEqual(readSettings(join(dir, 'absent.json')), {});
  });
  it('a malformed file is an error naming the file and the key', () => {
    for (const [content, problem] of [
      ['{', /not valid JSON/],
      ['{"network": {"allowedDomains": ["https://x.dev"]}}', /network\.allowedDomains has "https:\/\/x.dev"/],
      ['{"network": {"allowed": []}}', /"network\.allowed" is not a setting/],
      ['{"files": {}}', /"files" is not a section/],
      ['{"filesystem": {"denyRead": "x"}}', /filesystem\.denyRead must be a list/],
    ] as const) {
      const path = file('bad.json', content);
      assert.throws(
        () => readSettings(path),
        (err: Error & { exitCode: number }) =>
          err.exitCode === 78 && err.message.includes(path) && problem.test(err.message),
      );
    }
  });
});

describe('file guards', () => {
  it('makes .git/hooks (made if missing), .git/config and the settings file read-only; finds denied files', () => {
    const ws = mkdtempSync(join(tmpdir(), 'sbx-guard-'));
    execFileSync('git', ['init', '-q', ws]);
    execFileSync('rm', ['-rf', join(ws, '.git', 'hooks')]);
    mkdirSync(join(ws, '.sbx'));
    writeFileSync(join(ws, '.sbx', 'settings.json'), '{}');
    mkdirSync(join(ws, 'certs'));
    writeFileSync(join(ws, '.env'), 'SECRET=1');
    writeFileSync(join(ws, 'certs', 'key.pem'), 'x');
    mkdirSync(join(ws, 'node_modules', 'pkg'), { recursive: true });
    writeFileSync(join(ws, 'node_modules', 'pkg', 'test.pem'), 'x');
    const guards = fileGuards(
      ws,
      ['.git/hooks', '.git/config', 'missing.txt'],
      ['.env', '*.pem'],
      '.sbx/settings.json',
    );
    assert.deepEqual(guards.readOnly, [
      join(ws, '.git/hooks'),
      join(ws, '.git/config'),
      join(ws, '.sbx/settings.json'),
    ]);
    assert.deepEqual(guards.binds[0], `${join(ws, '.git/hooks')}:${join(ws, '.git/hooks')}:ro`);
    assert.deepEqual(guards.hidden.sort(), [join(ws, '.env'), join(ws, 'certs', 'key.pem')]);
    assert.deepEqual(guards.mounts[0], {
      Type: 'bind',
      Source: '/dev/null',
      Target: guards.hidden[0],
      ReadOnly: true,
    });
    assert.deepEqual(denyReadMatches(ws, ['certs/*.pem']), [join(ws, 'certs', 'key.pem')]);
  });
  it("guards a worktree's hooks and config in the repository's common folder when it is in the workspace", () => {
    const ws = mkdtempSync(join(tmpdir(), 'sbx-guard-'));
    const git = (...args: string[]) => execFileSync('git', ['-C', ws, ...args], { stdio: 'ignore' });
    git('init', '-q');
    git('-c', 'user.name=a', '-c', 'user.email=a@b', 'commit', '-q', '--allow-empty', '-m', 'x');
    git('worktree', 'add', '-q', join(ws, 'wt'));
    const guards = fileGuards(join(ws, 'wt'), ['.git/hooks', '.git/config'], [], '.sbx/settings.json');
    assert.deepEqual(
      guards.readOnly,
      [],
      'the common folder lies outside this workspace: not mounted at all',
    );
    const outer = fileGuards(ws, ['.git/hooks', '.git/config'], [], '.sbx/settings.json');
    assert.deepEqual(outer.readOnly, [join(ws, '.git/hooks'), join(ws, '.git/config')]);
  });
});

describe('sandbox subnets', () => {
  it('are /28s of the pool, all different, starting at a place picked by the name', async () => {
    const { sandboxSubnets } = await import('../../src/network/proxy.js');
    const all = [...sandboxSubnets('sbx-app-12345678')];
    assert.equal(all.length, 4096);
    assert.equal(new Set(all).size, 4096);
    assert.ok(
      all.every((s) => /^10\.213\.\d+\.\d+\/28$/.test(s) && inSubnet(s.split('/')[0]!, '10.213.0.0/16')),
    );
    assert.notEqual(all[0], [...sandboxSubnets('sbx-other-87654321')][0]);
    assert.equal([...sandboxSubnets('x', '10.99.0.0/16')][0]!.startsWith('10.99.'), true);
  });

  it('give the proxy, the sandbox and its forwarder fixed addresses after the gateway', async () => {
    const { addressIn } = await import('../../src/network/proxy.js');
    assert.deepEqual(
      (['proxy', 'sandbox', 'forwarder'] as const).map((m) => addressIn('10.213.7.240/28', m)),
      ['10.213.7.242', '10.213.7.243', '10.213.7.244'],
    );
    assert.equal(addressIn(undefined, 'proxy'), undefined);
  });
});

describe('upstream proxy', () => {
  it("reads the host's proxy and NO_PROXY; NO_PROXY matches names and domains", async () => {
    const { upstreamProxy } = await import('../../src/config/tls-proxy.js');
    const { bypassesUpstream } = await import('../../src/network/policy.js');
    assert.equal(upstreamProxy({}), undefined);
    assert.deepEqual(
      upstreamProxy({ http_proxy: 'corp:8080', NO_PROXY: 'localhost, .corp.example,10.0.0.1' }),
      {
        url: 'http://corp:8080',
        noProxy: ['localhost', '.corp.example', '10.0.0.1'],
      },
    );
    assert.equal(upstreamProxy({ HTTP_PROXY: 'http://a:1', HTTPS_PROXY: 'http://b:2' })!.url, 'http://b:2');
    const no = ['.corp.example', 'internal.test', '*.svc'];
    assert.ok(bypassesUpstream(no, 'git.corp.example') && bypassesUpstream(no, 'corp.example'));
    assert.ok(bypassesUpstream(no, 'a.internal.test') && bypassesUpstream(no, 'x.svc'));
    assert.ok(!bypassesUpstream(no, 'registry.npmjs.org') && !bypassesUpstream(no, 'notcorp.example'));
    assert.ok(bypassesUpstream(['*'], 'anything'));
  });
});
