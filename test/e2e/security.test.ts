import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROXY, REGISTRY_PING, type Result, RUN_ID, sbx, TEST_LABEL, workspace } from '../helpers/cli.js';
import { cleanupTestResources, containersOf, docker, FITTING_LIMITS } from '../helpers/engine.js';

after(() => cleanupTestResources());

/** Registry traffic is the only outside traffic: everything refused is refused at the proxy. */
const REGISTRY = 'https://registry.npmjs.org/';
const ON_PODMAN = Boolean(process.env.DOCKER_HOST?.includes('podman'));
/** The first host address of an IPv4 subnet (a.b.c.d/len): where an engine puts a network's gateway. */
const firstAddress = (subnet: string) => {
  const [base, len] = subnet.split('/');
  const n = base!.split('.').reduce((a, o) => a * 256 + Number(o), 0);
  const first = ((n >>> (32 - Number(len))) << (32 - Number(len))) + 1;
  return [24, 16, 8, 0].map((shift) => (first >>> shift) & 255).join('.');
};
/** curl's view of one request: the proxy's answer to CONNECT, and the final HTTP status. */
const probe = (url: string, extra = '') =>
  `curl -s -m 20 ${extra} -o /dev/null -w '%{http_connect} %{http_code}\\n' ${url}; true`;

const inSandbox = async (ws: string, script: string, args: string[] = []): Promise<Result> =>
  sbx(['run', 'shell', ...args, '--', 'sh', '-c', script], { cwd: ws });

describe('egress policy: every request leaves through the proxy, which decides by host name', {
  timeout: 600_000,
}, () => {
  let target = { ip: '', id: '' };
  before(async () => {
    // The suite's own server on an outside network (the default bridge), for the bypass attempts.
    const image = (await docker.getImage('sbx/base:latest').inspect()).Id;
    const c = await docker.createContainer({
      Image: image,
      Entrypoint: ['python3', '-m', 'http.server', '8000'],
      Labels: { [TEST_LABEL]: RUN_ID },
      HostConfig: FITTING_LIMITS,
    });
    await c.start();
    target = { ip: (await c.inspect()).NetworkSettings.IPAddress, id: c.id };
    // Ready when it accepts a connection (no HTTP request: its log must show none from anyone).
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      const ok = await new Promise<boolean>((resolve) => {
        const socket = connect(8000, target.ip, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
      if (ok) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it('allows a registry through the proxy and logs it; the same request without the proxy gets nowhere', async () => {
    const ws = await workspace();
    const r = await inSandbox(
      ws,
      [
        probe(REGISTRY),
        `npm view --silent is-number@7.0.0 version`,
        probe(REGISTRY, "--noproxy '*'"),
        `curl -s -m 5 --noproxy '*' http://${target.ip}:8000/ >/dev/null && echo DIRECT-REACHED || echo direct-failed`,
        'getent hosts registry.npmjs.org && echo DNS-RESOLVED || echo dns-failed',
      ].join('; '),
    );
    assert.equal(r.stdout, '200 200\n7.0.0\n000 000\ndirect-failed\ndns-failed\n', r.stderr);
    const log = JSON.parse((await sbx(['network', 'log', '--json'], { cwd: ws })).stdout) as Array<{
      host: string;
      port: number;
      allowed: boolean;
      rule: string;
    }>;
    assert.ok(
      log.some(
        (d) => d.host === 'registry.npmjs.org' && d.port === 443 && d.allowed && d.rule === 'default allow',
      ),
    );
  });

  it('refuses a blocked host with 403 naming the rule, also when it is allowed too', async () => {
    const ws = await workspace();
    const r = await inSandbox(ws, `${probe(REGISTRY)}; curl -s http://registry.npmjs.org/`, [
      '--allow-host',
      'registry.npmjs.org',
      '--block-host',
      '*.npmjs.org',
    ]);
    assert.equal(
      r.stdout,
      `403 000\nsbx egress policy: registry.npmjs.org:80 refused for sandbox ${(await containersOf(ws))[0]!.Names[0]!.slice(1)} by rule "deny *.npmjs.org".\n`,
      r.stderr,
    );
  });

  it("deny mode allows the agent's own hosts and refuses the rest", async () => {
    const ws = await workspace();
    const r = await inSandbox(ws, `${probe(REGISTRY)}; curl -s http://deb.debian.org/debian/`, [
      '--network-policy',
      'deny',
    ]);
    assert.match(
      r.stdout,
      /^200 200\nsbx egress policy: deb\.debian\.org:80 refused .* by rule "default deny \(not in the allow list\)"\.\n$/,
    );
  });

  it('refuses private addresses, the host and cloud metadata, by address and by a name that resolves to one', async () => {
    const ws = await workspace();
    const gateway = (await docker.getNetwork('bridge').inspect()).IPAM?.Config?.[0]?.Gateway ?? '172.17.0.1';
    const r = await inSandbox(
      ws,
      [
        probe(`https://${target.ip}:8000/`),
        `curl -s http://${target.ip}:8000/`,
        `curl -s http://${gateway}/`,
        'curl -s http://169.254.169.254/latest/meta-data/',
        `curl -s --noproxy '' -x http://${PROXY}:3128 http://localhost:8000/`,
      ].join('; '),
    );
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], '403 000', 'CONNECT to a private address');
    assert.match(lines[1]!, /refused .* by rule "private address"/);
    assert.match(lines[2]!, /refused .* by rule "(private address|the host itself)"/);
    assert.match(lines[3]!, /refused .* by rule "cloud metadata address"/);
    assert.match(lines[4]!, /localhost:8000 refused .* resolves to (127\.0\.0\.1|::1): loopback address/);
    const served = await docker.getContainer(target.id).logs({ stdout: true, stderr: true });
    assert.doesNotMatch(served.toString(), /GET \//, 'nothing reached the test server');
  });

  it("cannot reach the host at its sandbox network's gateway address: the network's bridge has none", {
    skip: ON_PODMAN
      ? "Podman 4.3's netavark gives an internal network's bridge the gateway address, and has no option to leave it out: a known gap under Podman (docs/security.md)"
      : false,
  }, async () => {
    // The suite's own listener on every address of the host: an attacker's target would be sshd,
    // a dev server or a database listening on 0.0.0.0.
    let hits = 0;
    const server = createServer((socket) => {
      hits++;
      socket.destroy();
    }).listen(0, '0.0.0.0');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    try {
      const ws = await workspace();
      const made = await sbx(['create', 'shell', ws, '--json']);
      assert.equal(made.code, 0, made.stderr);
      const { name } = JSON.parse(made.stdout) as { name: string };
      const network = (await docker.getContainer(name).inspect()).Config.Labels['dev.sbx.network']!;
      const ipam = (await docker.getNetwork(network).inspect()).IPAM?.Config?.[0] ?? {};
      const gateway = ipam.Gateway || firstAddress(ipam.Subnet!);
      const r = await inSandbox(
        ws,
        `timeout 5 bash -c 'exec 3<>/dev/tcp/${gateway}/${port}' 2>/dev/null && echo REACHED || echo unreachable`,
      );
      assert.equal(r.stdout, 'unreachable\n', r.stderr);
      assert.equal(hits, 0, 'the host listener saw no connection from the sandbox');
      // The listener itself answers (the probe above would have found it).
      await new Promise<void>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.destroy();
          resolve();
        });
        socket.on('error', reject);
      });
    } finally {
      server.close();
    }
  });

  it('network block on a running sandbox applies to the next request of its running agent; the log shows both', async () => {
    const ws = await workspace();
    const loop = `while :; do { ${probe(REGISTRY)}; } >> /tmp/codes; sleep 0.3; done`;
    assert.equal((await sbx(['run', 'shell', '-d', '--', 'sh', '-c', loop], { cwd: ws })).code, 0);
    const codes = async () => (await sbx(['exec', '.', '--', 'cat', '/tmp/codes'], { cwd: ws })).stdout;
    const waitFor = async (pattern: RegExp) => {
      for (const deadline = Date.now() + 30_000; Date.now() < deadline; ) {
        if (pattern.test(await codes())) return;
        await new Promise((r) => setTimeout(r, 300));
      }
      assert.fail(`no ${pattern} in ${await codes()}`);
    };
    await waitFor(/^200 200$/m);
    const [container] = await containersOf(ws);
    const started = (await docker.getContainer(container!.Id).inspect()).State.StartedAt;
    const blocked = await sbx(['network', 'block', '.', 'registry.npmjs.org'], { cwd: ws });
    assert.match(blocked.stdout, /allow policy; allow: -; deny: registry\.npmjs\.org/);
    await waitFor(/^403 000$/m);
    assert.equal(
      (await docker.getContainer(container!.Id).inspect()).State.StartedAt,
      started,
      'not restarted',
    );
    const agent = await sbx(['exec', '.', '--', 'tmux', 'has-session', '-t', 'sbx-shell'], { cwd: ws });
    assert.equal(agent.code, 0, 'the agent still runs');
    const text = (await sbx(['network', 'log'], { cwd: ws })).stdout;
    assert.match(text, /allowed {2}CONNECT registry\.npmjs\.org:443 {2}\(default allow\)/);
    assert.match(text, /REFUSED {2}CONNECT registry\.npmjs\.org:443 {2}\(deny registry\.npmjs\.org\)/);
    assert.equal((await sbx(['network', 'allow', '.', 'registry.npmjs.org'], { cwd: ws })).code, 0);
    const inspected = JSON.parse((await sbx(['inspect', '--json'], { cwd: ws })).stdout);
    assert.deepEqual(inspected.policy, { mode: 'allow', allow: ['registry.npmjs.org'], deny: [] });
  });

  it('--network none cuts everything', async () => {
    const ws = await workspace();
    // The interfaces from /proc/net/dev: gVisor has no /sys/class/net.
    const interfaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";
    const r = await inSandbox(ws, `${probe(REGISTRY)}; ${interfaces}`, ['--network', 'none']);
    assert.equal(r.stdout, '000 000\nlo\n');
  });

  it('refuses invalid patterns and settings, creating nothing', async () => {
    const ws = await workspace();
    for (const [flag, pattern, why] of [
      ['--allow-host', 'https://example.com', /not a URL/],
      ['--allow-host', 'example.com/x', /without a path/],
      ['--allow-host', '*', /bare \*/],
      ['--block-host', '*.com', /whole top-level domain/],
    ] as const) {
      const r = await sbx(['create', 'shell', flag, pattern], { cwd: ws });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
    }
    mkdirSync(join(ws, '.sbx'));
    writeFileSync(join(ws, '.sbx', 'settings.json'), '{"network": {"deniedDomains": "x"}}');
    const broken = await sbx(['create', 'shell'], { cwd: ws });
    assert.equal(broken.code, 78, broken.stderr);
    assert.match(broken.stderr, /settings\.json cannot be used: network\.deniedDomains must be a list/);
    assert.equal((await containersOf(ws)).length, 0);
  });

  it('reads denied hosts from the user settings and the workspace settings', async () => {
    const ws = await workspace();
    const configDir = mkdtempSync(join(tmpdir(), 'sbx-cfg-'));
    writeFileSync(
      join(configDir, 'settings.json'),
      JSON.stringify({ network: { deniedDomains: ['registry.npmjs.org'] } }),
    );
    const r = await sbx(['run', 'shell', '--', 'sh', '-c', probe(REGISTRY)], {
      cwd: ws,
      env: { SBX_CONFIG_DIR: configDir },
    });
    assert.equal(r.stdout, '403 000\n', r.stderr);
  });
});

describe('file guards', { timeout: 300_000 }, () => {
  it("git's hooks and config written inside stay in the sandbox's own git folder, the workspace settings are read-only inside; denied files read as empty", async (t) => {
    const ws = await workspace();
    execFileSync('rm', ['-rf', join(ws, '.git', 'hooks')]);
    mkdirSync(join(ws, '.sbx'));
    writeFileSync(
      join(ws, '.sbx', 'settings.json'),
      JSON.stringify({ filesystem: { denyRead: ['.env', '*.pem'] } }),
    );
    writeFileSync(join(ws, '.env'), 'API_KEY=do-not-read');
    mkdirSync(join(ws, 'certs'));
    writeFileSync(join(ws, 'certs', 'server.pem'), 'PRIVATE');
    writeFileSync(join(ws, 'notes.txt'), 'readable');
    // The workspace's own settings apply once approved (test/e2e/trust.test.ts; forgotten below).
    assert.equal((await sbx(['trust', ws])).code, 0);
    t.after(() => sbx(['trust', '--revoke', ws]));
    const r = await inSandbox(
      ws,
      [
        'printf "#!/bin/sh\\necho pwned\\n" > .git/hooks/pre-commit && echo HOOK-WRITTEN || echo hook-refused',
        'git config core.hooksPath /tmp && echo CONFIG-WRITTEN || echo config-refused',
        "echo '{}' > .sbx/settings.json && echo SETTINGS-WRITTEN || echo settings-refused",
        'printf "[%s][%s][%s]\\n" "$(cat .env)" "$(cat certs/server.pem)" "$(cat notes.txt)"',
        'echo new > created.txt && echo workspace-writable',
      ].join('; '),
    );
    assert.equal(
      r.stdout,
      'HOOK-WRITTEN\nCONFIG-WRITTEN\nsettings-refused\n[][][readable]\nworkspace-writable\n',
      r.stderr,
    );
    assert.equal(readFileSync(join(ws, '.env'), 'utf8'), 'API_KEY=do-not-read', 'the host file is untouched');
    // Private history: what the agent wrote is its own git folder's; the host's is untouched.
    assert.doesNotMatch(readFileSync(join(ws, '.git', 'config'), 'utf8'), /hooksPath/);
    assert.ok(!existsSync(join(ws, '.git', 'hooks', 'pre-commit')), "no hook in the host's git folder");
  });
});

describe('hardening', { timeout: 300_000 }, () => {
  it("namespaces: the engine's default seccomp profile refuses them under runc; gVisor's are its own", async () => {
    const ws = await workspace();
    const r = await sbx(
      [
        'run',
        'shell',
        '--',
        'sh',
        '-c',
        'unshare -Ur true 2>&1; echo "user=$?"; unshare -Urn true 2>&1; echo "net=$?"',
      ],
      { cwd: ws },
    );
    assert.equal(r.code, 0, r.stderr);
    const runtime = JSON.parse((await sbx(['inspect', '--json'], { cwd: ws })).stdout).runtime;
    if (runtime === 'runsc')
      // Namespaces of gVisor's kernel, not the host's: no host kernel code is reached by them.
      assert.match(r.stdout, /user=0\nnet=0\n$/);
    // Refused (the words differ: Docker's profile refuses unshare itself, Podman's the uid_map write).
    else assert.match(r.stdout, /Operation not permitted\nuser=1\n.*Operation not permitted\nnet=1\n$/s);
  });

  it('no Docker socket by default; the documented capability set; --no-sudo', async () => {
    const ws = await workspace();
    const r = await inSandbox(
      ws,
      [
        'test -e /var/run/docker.sock && echo SOCKET || echo no-socket',
        'curl -s -m 3 --unix-socket /var/run/docker.sock http://x/version >/dev/null && echo ENGINE || echo no-engine',
        "grep CapBnd /proc/self/status | tr -d '\\t'",
      ].join('; '),
    );
    // Docker's default set without AUDIT_WRITE, MKNOD, NET_RAW, SETFCAP, SYS_CHROOT: CHOWN,
    // DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE.
    assert.equal(r.stdout, 'no-socket\nno-engine\nCapBnd:00000000000005fb\n', r.stderr);
    const sudo = await sbx(['exec', '-u', '1000', '.', '--', 'sudo', '-n', 'true'], { cwd: ws });
    if (/does not honour setuid programs/.test(r.stderr)) {
      // A runtime without setuid (Debian 12's gVisor): sbx said so when it made the sandbox.
      assert.match(sudo.stderr, /no new privileges/);
    } else {
      assert.equal(sudo.code, 0, `sudo works by default: ${sudo.stderr}`);
      assert.equal(sudo.stderr, '', 'and quietly');
    }

    const strict = await workspace();
    await sbx(['create', 'shell', '--no-sudo'], { cwd: strict });
    const refused = await sbx(['exec', '-u', '1000', '.', '--', 'sudo', '-n', 'true'], { cwd: strict });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /no new privileges/);
    const inspected = JSON.parse((await sbx(['inspect', '--json'], { cwd: strict })).stdout);
    assert.equal(inspected.sudo, false);
    assert.equal(inspected.dockerSocket, false);
  });

  it('--mount-docker-socket warns every time and shows in inspect', async () => {
    const ws = await workspace();
    const first = await sbx(
      ['run', 'shell', '--mount-docker-socket', '--', 'test', '-S', '/var/run/docker.sock'],
      { cwd: ws },
    );
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /Warning: this sandbox has the Docker socket/);
    const again = await sbx(['run', 'shell', '--', 'true'], { cwd: ws });
    assert.match(again.stderr, /Warning: this sandbox has the Docker socket/);
    assert.equal(JSON.parse((await sbx(['inspect', '--json'], { cwd: ws })).stdout).dockerSocket, true);
  });
});

describe('the egress proxy under concurrency', { timeout: 300_000 }, () => {
  it('parallel creates while an outdated proxy is replaced all succeed, and all get out', async () => {
    // A proxy from another sbx version (its code label differs), as after an upgrade.
    const current = await docker
      .getContainer(PROXY)
      .inspect()
      .catch(() => undefined);
    await docker
      .getContainer(PROXY)
      .remove({ force: true })
      .catch(() => {});
    const old = await docker.createContainer({
      name: PROXY,
      Image: current?.Config.Image ?? 'sbx/base:latest',
      Cmd: ['sleep', '600'],
      Entrypoint: [],
      Labels: { 'dev.sbx.proxy': PROXY, 'dev.sbx.proxy.code': 'an-older-sbx', [TEST_LABEL]: RUN_ID },
      HostConfig: FITTING_LIMITS,
    });
    await old.start();
    const spaces = await Promise.all([1, 2, 3, 4, 5].map(() => workspace()));
    const created = await Promise.all(spaces.map((cwd) => sbx(['create', 'shell'], { cwd })));
    for (const r of created) assert.equal(r.code, 0, r.stderr);
    const proxy = await docker.getContainer(PROXY).inspect();
    assert.notEqual(proxy.Id, old.id);
    assert.notEqual(proxy.Config.Labels['dev.sbx.proxy.code'], 'an-older-sbx');
    for (const cwd of spaces) {
      const r = await sbx(['run', 'shell', '--', ...REGISTRY_PING], { cwd });
      assert.equal(r.stdout, '200', r.stderr);
    }
  });
});
