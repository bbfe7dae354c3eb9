/**
 * The inner guard (--inner-sandbox): the agent's own sandbox working inside sbx's, both layers
 * holding at once. Everything is checked from inside, as the agent user: srt (Anthropic's sandbox
 * runtime) with a settings file allowing one of the suite's own test hosts and denying another,
 * both on the sandbox's allowed list, so the traffic goes through sbx's egress proxy; srt's denyRead;
 * bwrap --unshare-net; sbx's policy still refusing what srt allows; Claude Code running its Bash tool
 * inside bubblewrap; the hardening kept. Without the flag a user namespace cannot be made.
 *
 * SBX_RUNTIME=runsc runs it all under gVisor (the gVisor pass of test/run.sh): there the
 * engine's default seccomp profile stays, and where this machine's runsc cannot run bubblewrap the
 * checks that need it are skipped with the reason measured in the sandbox.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DROPPED_CAPABILITIES } from '../../src/sandbox/security.js';
import {
  NO_TEST_USER,
  PROXY,
  type Result,
  ROOT,
  RUN_ID,
  type RunOptions,
  sbx,
  TEST_LABEL,
  TEST_USER,
  workspace,
} from '../helpers/cli.js';
import { cleanupTestResources, docker, FITTING_LIMITS, until } from '../helpers/engine.js';
import { FINAL, type Recorded } from '../helpers/stand-in-api.js';

after(async () => {
  await cleanupTestResources();
});

/** The gVisor pass of test/run.sh sets SBX_RUNTIME, which sbx itself reads. */
const RUNTIME = process.env.SBX_RUNTIME?.trim() || undefined;
const runtimeFlags: string[] = [];
const PORT = 8080;
/** A port of host A that sbx's policy does not allow (srt allows all of A). */
const OTHER_PORT = 8081;

/** The suite's own test hosts: A (allowed by srt) and B (denied by srt), both allowed by sbx. */
const hosts = { a: '', b: '' };
/** The stand-in API for Claude Code, on the default bridge like any outside host. */
const standIn = { ip: '', base: '' };

const noProxy = () => {
  const list = [process.env.NO_PROXY ?? process.env.no_proxy, hosts.a, hosts.b, standIn.ip]
    .filter(Boolean)
    .join(',');
  return { NO_PROXY: list, no_proxy: list };
};

/** A test container on the default bridge running `source` with node; returns its address. */
async function testContainer(source: string, env: string[] = []): Promise<string> {
  const image = (await docker.getImage('sbx/base:latest').inspect()).Id;
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: ['node', '--input-type=module', '-e', source],
    Env: env,
    Labels: { [TEST_LABEL]: RUN_ID },
    HostConfig: FITTING_LIMITS,
  });
  await container.start();
  return (await container.inspect()).NetworkSettings.IPAddress;
}

/** An HTTP server answering "hello from NAME to ADDRESS" (the address the request came from). */
const helloServer = (name: string) => `
import { createServer } from 'node:http';
for (const port of [${PORT}, ${OTHER_PORT}])
  createServer((req, res) => res.end('hello from ${name} to ' + req.socket.remoteAddress.replace(/^::ffff:/, ''))).listen(port);
`;

const proxyAddress = async () =>
  (await docker.getContainer(PROXY).inspect()).NetworkSettings.Networks.bridge?.IPAddress;

/**
 * sbx as the workspace's owner, a non-root user: the agent runs as that user, as it does for most
 * users. (As root, which a root-owned workspace means, bubblewrap would need CAP_SETFCAP to map root
 * into its user namespace, and sandboxes do without it: see the last test.)
 */
const asOwner = (args: string[], options: RunOptions = {}): Promise<Result> =>
  sbx(args, { env: noProxy(), asUser: TEST_USER, ...options });

/** Runs a shell script in the workspace's sandbox as the agent user. */
const inside = (ws: string, script: string): Promise<Result> =>
  asOwner(['exec', '.', '--', 'bash', '-c', script], { cwd: ws });

/**
 * A script in the sandbox printing, as one line, the body and HTTP status curl got from a URL (or
 * its exit code): `bash /tmp/get URL`, plain or wrapped by srt. srt exempts private addresses from
 * its proxy (its NO_PROXY), and the suite's test hosts have private addresses: the script clears
 * NO_PROXY so that curl asks the proxy, as it would for any outside host.
 */
const GET = [
  `printf '%s\\n'`,
  `'out=$(NO_PROXY= no_proxy= curl -sS -m 20 -w " status=%{http_code}" "$1" 2>&1) || out="$out curl-failed=$?"'`,
  `'echo "$out" | tr "\\n" " "; echo'`,
  '> /tmp/get',
].join(' ');
const get = (host: string, port = PORT) => `bash /tmp/get http://${host}:${port}/`;

interface SrtSettings {
  allowed: string[];
  denied: string[];
  denyRead: string[];
}
const srtSettings = (s: SrtSettings) =>
  JSON.stringify({
    // A container's /proc has masked paths, so bubblewrap cannot mount a fresh one there: srt binds
    // the container's own /proc instead (its documented mode for running nested in a container).
    enableWeakerNestedSandbox: true,
    network: { allowedDomains: s.allowed, deniedDomains: s.denied },
    filesystem: { denyRead: s.denyRead, allowWrite: ['.'], denyWrite: [] },
  });

/**
 * Why bubblewrap cannot run in this sandbox, measured there, or undefined when it can. Under runc
 * with the relaxed profile it runs; Debian 12's runsc (2022) lacks /proc/sys/kernel/overflowuid.
 */
async function bwrapProblem(ws: string): Promise<string | undefined> {
  const r = await inside(ws, 'bwrap --ro-bind / / --dev /dev --unshare-user --unshare-net true 2>&1');
  return r.code === 0 ? undefined : `bubblewrap does not start in this sandbox: ${r.stdout.trim()}`;
}

describe(`the inner guard (--inner-sandbox)${RUNTIME ? ` under ${RUNTIME}` : ''}`, {
  timeout: 900_000,
  skip: NO_TEST_USER,
}, () => {
  let ws = '';
  let bwrapIssue: string | undefined;

  before(async () => {
    hosts.a = await testContainer(helloServer('A'));
    hosts.b = await testContainer(helloServer('B'));
    const source = readFileSync(join(ROOT, 'dist', 'test', 'helpers', 'stand-in-api.js'), 'utf8');
    standIn.ip = await testContainer(source, [
      `STANDIN_PORT=${PORT}`,
      // The Bash tool's command: a write outside the workspace (refused by Claude Code's sandbox,
      // allowed to the agent user outside it) and the user namespace it runs in.
      'STANDIN_COMMAND=echo TOOL-RAN; (echo x > "$HOME/outside-the-workspace") 2>&1 || echo WRITE-DENIED; echo "userns=$(readlink /proc/self/ns/user)"',
    ]);
    standIn.base = `http://${standIn.ip}:${PORT}`;
    await until('the test hosts answer', async () => {
      const answers = await Promise.all(
        [hosts.a, hosts.b, standIn.ip].map((ip) =>
          fetch(`http://${ip}:${PORT}/${ip === standIn.ip ? '_standin/requests' : ''}`).then(
            (r) => r.ok,
            () => false,
          ),
        ),
      );
      return answers.every(Boolean);
    });
    ws = await workspace({ owner: TEST_USER });
    writeFileSync(join(ws, 'secret.txt'), 'the-secret\n');
    const created = await asOwner(
      [
        'create',
        'claude',
        '--inner-sandbox',
        ...runtimeFlags,
        '--network-policy',
        'deny',
        '--allow-host',
        `${hosts.a}:${PORT}`,
        '--allow-host',
        `${hosts.b}:${PORT}`,
        '--allow-host',
        `${standIn.ip}:${PORT}`,
        '--block-host',
        'api.anthropic.com',
      ],
      { cwd: ws, timeoutMs: 600_000 },
    );
    assert.equal(created.code, 0, created.stderr);
    bwrapIssue = await bwrapProblem(ws);
    if (!RUNTIME) assert.equal(bwrapIssue, undefined, 'bubblewrap runs under runc with the relaxed profile');
  });

  it('shows in inspect and ls --json; under runc only, a seccomp profile relaxed for nested namespaces (always without setuid modes)', async () => {
    const inspected = JSON.parse((await asOwner(['inspect', '--json'], { cwd: ws })).stdout);
    assert.equal(inspected.innerSandbox, true);
    assert.equal(inspected.runtime, RUNTIME ?? 'runc');
    const listed = JSON.parse((await asOwner(['ls', '--json'], { cwd: ws })).stdout) as Array<{
      id: string;
      innerSandbox: boolean;
    }>;
    assert.equal(listed.find((s) => s.id === inspected.id)?.innerSandbox, true);
    const info = await docker.getContainer(inspected.id).inspect();
    const seccomp = (info.HostConfig.SecurityOpt ?? []).filter((o: string) => o.startsWith('seccomp='));
    assert.equal(seccomp.length, 1);
    const profile = JSON.parse(seccomp[0]!.slice('seccomp='.length)) as {
      syscalls: Array<{ names: string[]; comment: string }>;
    };
    // gVisor: the plain profile (no relaxation), which like every sandbox's refuses setuid modes.
    assert.equal(
      profile.syscalls.some((r) => r.names.includes('pivot_root') && r.comment.startsWith('sbx inner guard')),
      RUNTIME !== 'runsc',
    );
    assert.ok(profile.syscalls.some((r) => r.comment.startsWith('sbx: modes without setuid')));
  });

  it('srt: the allowed host is reached through sbx egress proxy, the denied one is refused', async (t) => {
    if (bwrapIssue) return t.skip(bwrapIssue);
    const settings = srtSettings({ allowed: [hosts.a], denied: [hosts.b], denyRead: [] });
    const r = await inside(
      ws,
      [
        GET,
        `printf '%s' '${settings}' > /tmp/srt.json`,
        `srt --settings /tmp/srt.json -c '${get(hosts.a)}'`,
        `srt --settings /tmp/srt.json -c '${get(hosts.b)}'`,
        // Outside srt the same host answers: it is srt that refuses it.
        get(hosts.b),
      ].join('; '),
    );
    const [allowed, denied, outside] = r.stdout.split('\n').map((l) => l.trim());
    const proxy = await proxyAddress();
    assert.ok(proxy, 'the proxy is on the default bridge');
    // A saw the request come from sbx's egress proxy: the inner layer went through the outer one.
    assert.equal(allowed, `hello from A to ${proxy} status=200`, r.stdout + r.stderr);
    assert.doesNotMatch(denied ?? '', /hello from B/, r.stdout);
    assert.match(denied ?? '', /status=403|curl-failed/, r.stdout);
    assert.equal(outside, `hello from B to ${proxy} status=200`, r.stdout + r.stderr);
    const log = JSON.parse((await asOwner(['network', 'log', '--json'], { cwd: ws })).stdout) as Array<{
      host: string;
      port: number;
      allowed: boolean;
    }>;
    assert.ok(log.some((d) => d.host === hosts.a && d.port === PORT && d.allowed));
  });

  it('srt: denyRead hides a file inside the wrapped command only', async (t) => {
    if (bwrapIssue) return t.skip(bwrapIssue);
    const secret = join(ws, 'secret.txt');
    const settings = srtSettings({ allowed: [], denied: [], denyRead: [secret] });
    const r = await inside(
      ws,
      [
        `printf '%s' '${settings}' > /tmp/srt-read.json`,
        `srt --settings /tmp/srt-read.json -c 'cat ${secret} 2>&1 || echo READ-DENIED'`,
        `cat ${secret}`,
      ].join('; '),
    );
    assert.doesNotMatch(r.stdout.split('\n')[0] ?? '', /the-secret/, r.stdout);
    assert.match(r.stdout, /READ-DENIED\nthe-secret\n$/, r.stdout + r.stderr);
  });

  it('bwrap --unshare-net: no network at all, not even the egress proxy', async (t) => {
    if (bwrapIssue) return t.skip(bwrapIssue);
    const r = await inside(
      ws,
      [
        GET,
        `bwrap --ro-bind / / --dev /dev --unshare-user --unshare-net -- bash -c 'echo "interfaces:" $(tail -n +3 /proc/net/dev | cut -d: -f1); ${get(hosts.a)}'`,
      ].join('; '),
    );
    const [interfaces, reached] = r.stdout.split('\n');
    assert.equal(interfaces, 'interfaces: lo', `only loopback: ${r.stdout}${r.stderr}`);
    assert.doesNotMatch(r.stdout, /hello from A/);
    // Not even sbx's egress proxy is reachable from there.
    assert.match(reached ?? '', /Failed to connect to sbx-proxy.*curl-failed=7/, r.stdout);
  });

  it("sbx's policy still refuses what srt allows: the inner layer cannot widen the outer", async (t) => {
    if (bwrapIssue) return t.skip(bwrapIssue);
    // srt allows all of A; sbx allows only A:PORT.
    const settings = srtSettings({ allowed: [hosts.a, hosts.b], denied: [], denyRead: [] });
    const r = await inside(
      ws,
      [
        GET,
        `printf '%s' '${settings}' > /tmp/srt-wide.json`,
        `srt --settings /tmp/srt-wide.json -c '${get(hosts.a, OTHER_PORT)}'`,
      ].join('; '),
    );
    assert.doesNotMatch(r.stdout, /hello from A/, r.stdout);
    assert.match(r.stdout, /status=403|curl-failed/, r.stdout + r.stderr);
    const log = JSON.parse((await asOwner(['network', 'log', '--json'], { cwd: ws })).stdout) as Array<{
      host: string;
      port: number;
      allowed: boolean;
    }>;
    assert.ok(
      log.some((d) => d.host === hosts.a && d.port === OTHER_PORT && !d.allowed),
      `refused by sbx's proxy: ${JSON.stringify(log)}`,
    );
  });

  it('Claude Code with its sandbox on runs its Bash tool inside bubblewrap', async (t) => {
    if (bwrapIssue) return t.skip(bwrapIssue);
    const before = ((await (await fetch(`${standIn.base}/_standin/requests`)).json()) as Recorded[]).length;
    const r = await asOwner(
      [
        'run',
        'claude',
        '-e',
        `ANTHROPIC_BASE_URL=${standIn.base}`,
        '-e',
        'ANTHROPIC_API_KEY=sk-ant-standin',
        '-e',
        'CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1',
        '--',
        '-p',
        'Run the command.',
      ],
      { cwd: ws, timeoutMs: 300_000 },
    );
    const asked = ((await (await fetch(`${standIn.base}/_standin/requests`)).json()) as Recorded[]).slice(
      before,
    );
    const results = asked.flatMap((q) => (q.toolResult ? [q.toolResult] : [])).join('\n');
    const why = `claude exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}\n--- tool result\n${results}`;
    assert.match(results, /TOOL-RAN/, why);
    // The write outside the workspace was refused by Claude Code's sandbox...
    assert.match(results, /Read-only file system[\s\S]*WRITE-DENIED/, why);
    // ...in a user namespace of its own (bubblewrap's), not the sandbox's.
    const own = (await inside(ws, 'readlink /proc/self/ns/user')).stdout.trim();
    const toolNs = /userns=(user:\[\d+\])/.exec(results)?.[1];
    assert.ok(toolNs, why);
    assert.notEqual(toolNs, own, 'the tool ran in another user namespace');
    assert.ok(r.stdout.includes(`${FINAL}: tool output seen.`), why);
    // Outside Claude Code's sandbox the same write works for the agent user: it was the inner guard.
    const outside = await inside(
      ws,
      'test -e "$HOME/outside-the-workspace" && echo THERE; echo x > "$HOME/outside-the-workspace" && echo WROTE',
    );
    assert.equal(outside.stdout, 'WROTE\n', outside.stderr);
    // The managed settings that turned it on are root's: the agent cannot change them.
    const settings = await inside(
      ws,
      'stat -c %U /etc/claude-code/managed-settings.json; cat /etc/claude-code/managed-settings.json',
    );
    assert.match(settings.stdout, /^root\n/);
    assert.deepEqual(JSON.parse(settings.stdout.split('\n').slice(1).join('\n')).sandbox, {
      enabled: true,
      failIfUnavailable: true,
      allowUnsandboxedCommands: false,
      enableWeakerNestedSandbox: true,
    });
  });

  it('keeps the hardening: capability bounding set, no Docker socket, no-new-privileges under --no-sudo', async () => {
    const strict = await workspace({ owner: TEST_USER });
    const created = await asOwner(['create', 'shell', '--inner-sandbox', '--no-sudo', ...runtimeFlags], {
      cwd: strict,
      timeoutMs: 300_000,
    });
    assert.equal(created.code, 0, created.stderr);
    const r = await inside(
      strict,
      [
        "grep -E '^(CapBnd|NoNewPrivs)' /proc/self/status | tr -d '\\t'",
        'test -e /var/run/docker.sock && echo SOCKET || echo no-socket',
        'sudo -n true 2>&1 | grep -o "no new privileges" | head -1',
      ].join('; '),
    );
    // Docker's default set without the capabilities sbx drops (see security.test.ts).
    assert.equal(DROPPED_CAPABILITIES.length, 5);
    // gVisor's /proc/self/status has no NoNewPrivs line; sudo's refusal shows the flag under both.
    const nnp = RUNTIME === 'runsc' ? '' : 'NoNewPrivs:1\n';
    assert.equal(r.stdout, `CapBnd:00000000000005fb\n${nnp}no-socket\nno new privileges\n`, r.stderr);
    const info = JSON.parse((await asOwner(['inspect', '--json'], { cwd: strict })).stdout);
    assert.equal(info.innerSandbox, true);
    assert.equal(info.sudo, false);
    const host = (await docker.getContainer(info.id).inspect()).HostConfig.SecurityOpt ?? [];
    assert.ok(host.includes('no-new-privileges'), host.join(' '));
    if (RUNTIME !== 'runsc') {
      // Still refused with the relaxed profile: namespaces it does not add, and mounts outside one's own.
      const refused = await inside(
        strict,
        'unshare -U --uts true 2>&1 | tail -1; unshare -U --ipc true 2>&1 | tail -1; mount -t tmpfs x /mnt 2>&1 | head -1',
      );
      assert.match(
        refused.stdout,
        /^unshare: unshare failed: Operation not permitted\nunshare: unshare failed: Operation not permitted\nmount: .*(permission denied|must be superuser)/i,
        refused.stdout,
      );
    }
  });

  it('is fixed at creation: asking for it on an existing sandbox is an error that changes nothing', async () => {
    const plain = await workspace();
    const first = await sbx(['create', 'shell', ...runtimeFlags], { cwd: plain, timeoutMs: 300_000 });
    assert.equal(first.code, 0, first.stderr);
    const again = await sbx(['run', 'shell', '--inner-sandbox', '--', 'true'], { cwd: plain });
    assert.notEqual(again.code, 0);
    assert.match(
      again.stderr,
      /created without the inner guard; --inner-sandbox applies only when a sandbox is created/,
    );
    assert.match(again.stderr, /sbx rm -f .*your workspace files stay/);
    assert.doesNotMatch(again.stderr, /\n\s+at /, 'no stack trace');
    const info = JSON.parse((await sbx(['inspect', '--json'], { cwd: plain })).stdout);
    assert.equal(info.innerSandbox, false);
    // Without the flag the engine's default profile is in force: no user namespace (gVisor's are its own).
    const r = await sbx(['exec', '.', '--', 'bash', '-c', 'unshare -U true 2>&1; echo "rc=$?"'], {
      cwd: plain,
    });
    if (RUNTIME === 'runsc') assert.match(r.stdout, /rc=0\n$/);
    else assert.match(r.stdout, /Operation not permitted\nrc=1\n$/, r.stdout);
  });

  it('warns, when the agent runs as root, that bubblewrap cannot map root without CAP_SETFCAP', async () => {
    const rootOwned = await workspace();
    const r = await sbx(['create', 'shell', '--inner-sandbox', ...runtimeFlags], {
      cwd: rootOwned,
      timeoutMs: 300_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /bubblewrap cannot map root into its user namespace without CAP_SETFCAP/);
    const probe = await sbx(
      ['exec', '.', '--', 'bash', '-c', 'bwrap --ro-bind / / --unshare-user true 2>&1'],
      {
        cwd: rootOwned,
      },
    );
    assert.notEqual(probe.code, 0, 'the warning is true');
    assert.match(probe.stdout, /uid map|Operation not permitted|overflowuid/, probe.stdout);
  });
});
