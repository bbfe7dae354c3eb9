import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { STAGING } from '../../src/sync/tree.js';
import {
  BIN,
  REGISTRY_PING,
  type Result,
  ROOT,
  RUN_ID,
  sbx,
  TEST_LABEL,
  TEST_USER,
  workspace,
} from '../helpers/cli.js';
import { execIn as execOn, until } from '../helpers/engine.js';

/**
 * Engines other than the local socket: a second Docker Engine over TCP with TLS, in its own network
 * and mount namespaces so that it cannot see the workspace (test/helpers/remote-engine.sh), reached
 * on loopback; Docker CLI contexts; and an engine over ssh:// through an sshd on loopback.
 */
const root = process.getuid?.() === 0;
const HIDDEN = '/tmp/sbx-remote-ws';
let certs = '';
let forward: Server | undefined;
const forwarded = new Set<() => void>();
let remoteEnv: Record<string, string> = {};
let remote: Docker;

const remoteSbx = (args: string[], cwd: string, env: Record<string, string> = {}) =>
  sbx(args, { cwd, env: { ...remoteEnv, ...env } });

const ok = (r: Result, what = 'sbx') => assert.equal(r.code, 0, `${what} failed: ${r.stderr}`);

/** The files of a tree (not folders) and their hashes, relative. */
function hashes(dir: string, skip = new Set(['.git'])): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name);
      if (skip.has(e.name)) continue;
      if (e.isDirectory()) walk(full);
      else if (e.isFile())
        out[relative(dir, full)] = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

/** The same, read inside the sandbox on the remote engine. */
async function remoteHashes(container: string, dir: string): Promise<Record<string, string>> {
  const out = await execIn(container, [
    'sh',
    '-c',
    `cd '${dir}' && find . -path ./.git -prune -o -type f -print0 | xargs -0 -r sha256sum`,
  ]);
  return Object.fromEntries(
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [hash, path] = l.split(/\s+\.\//);
        return [path!, hash!];
      }),
  );
}

const execIn = (container: string, cmd: string[]) => execOn(container, cmd, remote);

const sandboxOf = async (dir: string) => {
  const [c] = await remote.listContainers({ all: true, filters: { label: [`dev.sbx.workspace=${dir}`] } });
  assert.ok(c, `no sandbox for ${dir} on the remote engine`);
  return c;
};

describe('a remote engine (TCP + TLS, cannot see the workspace): the workspace is synced', {
  skip: root ? false : 'starting a second engine in its own namespaces needs root (test/run.sh runs as root)',
  timeout: 900_000,
}, () => {
  before(() => {
    certs = execFileSync('bash', [join(ROOT, 'test/helpers/remote-engine.sh'), 'start', HIDDEN], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .toString()
      .trim();
    // The engine listens in its namespace; the suite reaches it on loopback like a forwarded remote.
    // Half-open like a real TCP path: the exec streams close stdin and keep reading output.
    forward = createServer({ allowHalfOpen: true }, (c) => {
      const upstream = connect({ port: 2376, host: '10.250.0.2', allowHalfOpen: true });
      c.pipe(upstream).pipe(c);
      const close = () => {
        c.destroy();
        upstream.destroy();
      };
      c.on('error', close);
      upstream.on('error', close);
      // A client killed mid-upload (the sync-killed test) leaves the engine's side half-open for good:
      // such pairs are ended with the suite, or they would keep this process alive.
      forwarded.add(close);
      c.on('close', () => forwarded.delete(close));
    });
    return new Promise<void>((resolve) =>
      forward!.listen(0, '127.0.0.1', () => {
        const port = (forward!.address() as { port: number }).port;
        remoteEnv = {
          DOCKER_HOST: `tcp://127.0.0.1:${port}`,
          DOCKER_TLS_VERIFY: '1',
          DOCKER_CERT_PATH: certs,
        };
        remote = new Docker({
          host: '127.0.0.1',
          port,
          protocol: 'https',
          ca: readFileSync(join(certs, 'ca.pem')),
          cert: readFileSync(join(certs, 'cert.pem')),
          key: readFileSync(join(certs, 'key.pem')),
        });
        resolve();
      }),
    );
  });

  after(async () => {
    const filters = { label: [`${TEST_LABEL}=${RUN_ID}`] };
    for (const c of await remote.listContainers({ all: true, filters }).catch(() => []))
      await remote
        .getContainer(c.Id)
        .remove({ force: true, v: true })
        .catch(() => {});
    for (const close of forwarded) close();
    forward?.close();
    execFileSync('bash', [join(ROOT, 'test/helpers/remote-engine.sh'), 'stop']);
  });

  it('says which engine it chose and why; TLS without the client certificate is refused with a hint', async () => {
    const dir = await workspace({ parent: HIDDEN });
    const mountAsked = await remoteSbx(['create', 'shell', '--no-sync'], dir);
    assert.equal(mountAsked.code, 2, mountAsked.stderr);
    assert.match(mountAsked.stderr, /cannot see it[\s\S]*Hint: Drop --no-sync/);
    assert.equal(
      (await remote.listContainers({ all: true, filters: { label: [`dev.sbx.workspace=${dir}`] } })).length,
      0,
    );
    const doctor = await remoteSbx(['doctor'], dir);
    assert.match(doctor.stdout, new RegExp(`at ${remoteEnv.DOCKER_HOST} \\(DOCKER_HOST\\)`));
    // --host wins over DOCKER_HOST, and --debug says so.
    const flagged = await sbx(['ls', '--debug', '--host', remoteEnv.DOCKER_HOST!], {
      env: { ...remoteEnv, DOCKER_HOST: 'tcp://127.0.0.1:1' },
    });
    ok(flagged);
    assert.match(flagged.stderr, /using tcp:\/\/127\.0\.0\.1:\d+ \(--host\)/);
    const noCert = await sbx(['ls'], {
      env: { ...remoteEnv, DOCKER_CERT_PATH: mkdtempSync(join(tmpdir(), 'sbx-nocert-')) },
    });
    assert.equal(noCert.code, 2);
    assert.match(noCert.stderr, /needs the CA certificate .*ca\.pem/);
    const untrusted = await sbx(['ls'], {
      env: { ...remoteEnv, DOCKER_TLS_VERIFY: '', DOCKER_TLS: '1', DOCKER_CERT_PATH: '/nonexistent' },
    });
    assert.equal(untrusted.code, 69, untrusted.stderr);
    assert.match(untrusted.stderr, /Hint: .*DOCKER_CERT_PATH/);
  });

  it('a Docker CLI context (named or current) selects the engine with its TLS files', async () => {
    const config = mkdtempSync(join(tmpdir(), 'sbx-docker-config-'));
    const id = createHash('sha256').update('far').digest('hex');
    mkdirSync(join(config, 'contexts', 'meta', id), { recursive: true });
    writeFileSync(
      join(config, 'contexts', 'meta', id, 'meta.json'),
      JSON.stringify({
        Name: 'far',
        Metadata: {},
        Endpoints: { docker: { Host: remoteEnv.DOCKER_HOST, SkipTLSVerify: false } },
      }),
    );
    const tls = join(config, 'contexts', 'tls', id, 'docker');
    mkdirSync(tls, { recursive: true });
    for (const f of ['ca.pem', 'cert.pem', 'key.pem'])
      writeFileSync(join(tls, f), readFileSync(join(certs, f)));
    const env = { DOCKER_CONFIG: config, DOCKER_HOST: '', DOCKER_TLS_VERIFY: '', DOCKER_CERT_PATH: '' };
    const named = await sbx(['doctor', '--context', 'far'], { env });
    assert.match(named.stdout, /\(--context: context far\)/, named.stderr);
    writeFileSync(join(config, 'config.json'), JSON.stringify({ currentContext: 'far' }));
    const current = await sbx(['doctor'], { env });
    assert.match(current.stdout, /the Docker CLI's current context .*: context far\)/, current.stderr);
    const missing = await sbx(['ls', '--context', 'nope'], { env });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /context "nope".*does not exist[\s\S]*Known contexts: default, far/);
  });

  it('sbx run on a remote engine: f written inside ends up in the host workspace; rm copies back first', async () => {
    const dir = await workspace({ parent: HIDDEN });
    writeFileSync(join(dir, 'in.txt'), 'from the host\n');
    const r = await remoteSbx(
      ['run', 'shell', '--', 'sh', '-c', 'cat in.txt && echo x > f && stat -c %U f'],
      dir,
    );
    ok(r);
    assert.match(r.stdout, /from the host/);
    assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'x\n');
    assert.match(r.stderr, /synced sbx-.*1 back here/);
    const c = await sandboxOf(dir);
    assert.equal(c.Mounts.find((m) => m.Destination === dir)?.Type, 'volume');
    const listed = JSON.parse((await remoteSbx(['ls', '--json'], dir)).stdout) as Array<{
      workspace: string;
      syncVolume: string | null;
    }>;
    assert.match(listed.find((s) => s.workspace === dir)?.syncVolume ?? '', /-workspace$/);
    // What the agent leaves behind comes back when the sandbox goes; then its copy goes with it.
    await execIn(c.Id, ['sh', '-c', `echo late > '${dir}/late.txt'`]);
    ok(await remoteSbx(['rm', '-f', '.'], dir));
    assert.equal(readFileSync(join(dir, 'late.txt'), 'utf8'), 'late\n');
    const volumes = (await remote.listVolumes()).Volumes ?? [];
    assert.ok(
      !volumes.some((v) => v.Name === `${c.Names[0]!.slice(1)}-workspace`),
      'workspace volume removed',
    );
  });

  it('conflicting edits are reported and nothing is overwritten; --theirs/--ours settle them; deletions travel only over unchanged files', async () => {
    const dir = await workspace({ parent: HIDDEN });
    for (const f of ['both.txt', 'gone-here.txt', 'gone-there.txt', 'edited-there.txt'])
      writeFileSync(join(dir, f), `${f} v1\n`);
    ok(await remoteSbx(['create', 'shell'], dir));
    const c = await sandboxOf(dir);
    // Through the engine API: the loopback forward lives in this process, so nothing may block it.
    const there = (script: string) => execIn(c.Id, ['sh', '-c', `cd '${dir}' && ${script}`]);
    writeFileSync(join(dir, 'both.txt'), 'host edit\n');
    unlinkSync(join(dir, 'gone-here.txt'));
    unlinkSync(join(dir, 'edited-there.txt'));
    await there('echo sandbox edit > both.txt; rm gone-there.txt; echo edited there > edited-there.txt');

    const refused = await remoteSbx(['sync'], dir);
    assert.equal(refused.code, 75, refused.stderr);
    assert.match(refused.stderr, /both\.txt \(here: changed, in the sandbox: changed\)/);
    assert.match(refused.stderr, /edited-there\.txt \(here: deleted, in the sandbox: changed\)/);
    assert.match(refused.stderr, /--ours.*--theirs/);
    assert.equal(readFileSync(join(dir, 'both.txt'), 'utf8'), 'host edit\n');
    assert.ok(existsSync(join(dir, 'gone-there.txt')), 'nothing copied while conflicts stand');
    assert.equal(await there('cat both.txt'), 'sandbox edit\n');

    ok(await remoteSbx(['sync', '--theirs'], dir));
    assert.equal(readFileSync(join(dir, 'both.txt'), 'utf8'), 'sandbox edit\n');
    assert.equal(readFileSync(join(dir, 'edited-there.txt'), 'utf8'), 'edited there\n');
    assert.ok(!existsSync(join(dir, 'gone-there.txt')), 'a deletion over an unchanged file travels');
    assert.match(await there('ls gone-here.txt 2>&1 || true'), /No such file/);

    writeFileSync(join(dir, 'both.txt'), 'host again\n');
    await there('echo sandbox again > both.txt');
    ok(await remoteSbx(['sync', '--ours'], dir));
    assert.equal(await there('cat both.txt'), 'host again\n');
    assert.deepEqual(await remoteHashes(c.Id, dir), hashes(dir));
  });

  it('git hooks and config changed in the sandbox never come back', async () => {
    const dir = await workspace({ parent: HIDDEN });
    const r = await remoteSbx(
      [
        'run',
        'shell',
        '--',
        'sh',
        '-c',
        'mkdir -p .git/hooks && echo "echo pwned" > .git/hooks/pre-commit && git config core.hooksPath /tmp && echo ok > kept.txt',
      ],
      dir,
    );
    ok(r);
    assert.match(r.stderr, /never copied back .*\.git\/config/);
    assert.ok(!existsSync(join(dir, '.git/hooks/pre-commit')));
    assert.doesNotMatch(readFileSync(join(dir, '.git/config'), 'utf8'), /hooksPath/);
    assert.equal(readFileSync(join(dir, 'kept.txt'), 'utf8'), 'ok\n');
  });

  it('a sync killed midway leaves every file whole on both sides and resumes to a consistent state', async () => {
    const dir = await workspace({ parent: HIDDEN });
    ok(await remoteSbx(['create', 'shell'], dir));
    const c = await sandboxOf(dir);
    const big = randomBytes(64 << 20);
    for (let i = 0; i < 4; i++) writeFileSync(join(dir, `big-${i}.bin`), big.subarray(i));
    for (let i = 0; i < 300; i++) writeFileSync(join(dir, `small-${i}.txt`), `small ${i}\n`);
    const child = spawn(process.execPath, [BIN, 'sync', 'push'], {
      cwd: dir,
      env: { ...process.env, ...remoteEnv, SBX_LABELS: `${TEST_LABEL}=${RUN_ID}` },
      stdio: 'ignore',
    });
    // Killed once part of the copy has landed in the sandbox's staging folder.
    await until('part of the copy in the sandbox', async () =>
      /^[1-9]/.test(await execIn(c.Id, ['sh', '-c', `du -sb '${dir}/${STAGING}' 2>/dev/null || echo 0`])),
    );
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
    // Whatever arrived is whole: a file in place has the host's content.
    const partial = await remoteHashes(c.Id, dir);
    const local = hashes(dir);
    for (const [path, hash] of Object.entries(partial)) {
      if (path.startsWith(`${STAGING}/`)) continue;
      assert.equal(hash, local[path], `${path} is whole or absent`);
    }
    const resumed = await remoteSbx(['sync'], dir);
    ok(resumed);
    const after = await remoteHashes(c.Id, dir);
    assert.deepEqual(after, local);
    assert.ok(!existsSync(join(dir, STAGING)));
  });

  it('5,000 files sync, and sync again with nothing changed (times reported)', async (t) => {
    const dir = await workspace({ parent: HIDDEN, git: false });
    for (let d = 0; d < 50; d++) {
      mkdirSync(join(dir, `dir-${d}`));
      for (let f = 0; f < 100; f++) writeFileSync(join(dir, `dir-${d}`, `file-${f}.txt`), `file ${d}/${f}\n`);
    }
    mkdirSync(join(dir, 'node_modules/pkg'), { recursive: true });
    writeFileSync(join(dir, 'node_modules/pkg/index.js'), 'heavy\n');
    const time = async (args: string[], env: Record<string, string> = {}) => {
      const started = Date.now();
      const r = await remoteSbx(args, dir, env);
      ok(r);
      return { seconds: (Date.now() - started) / 1000, r };
    };
    const config = mkdtempSync(join(tmpdir(), 'sbx-config-'));
    const env = { SBX_CONFIG_DIR: config };
    ok(await sbx(['config', 'set', 'sync.exclude', 'node_modules'], { env }));
    const first = await time(['create', 'shell'], env);
    assert.match(first.r.stderr, /5050 to the sandbox/);
    const again = await time(['sync'], env);
    assert.doesNotMatch(again.r.stderr, /synced/);
    writeFileSync(join(dir, 'dir-7/file-7.txt'), 'changed\n');
    const one = await time(['sync'], env);
    assert.match(one.r.stderr, /1 to the sandbox/);
    const c = await sandboxOf(dir);
    const there = await remoteHashes(c.Id, dir);
    assert.equal(Object.keys(there).length, 5000);
    assert.ok(!('node_modules/pkg/index.js' in there), 'sync.exclude honoured');
    const report = `5,000 files: first sync (with create) ${first.seconds.toFixed(1)} s, again with nothing changed ${again.seconds.toFixed(1)} s, one file changed ${one.seconds.toFixed(1)} s`;
    t.diagnostic(report);
    process.stderr.write(`engines.test: ${report}\n`);
  });

  it('a template builds on the remote engine from the same context', async () => {
    const dir = await workspace({ parent: HIDDEN });
    const tpl = join(dir, 'tpl');
    mkdirSync(tpl);
    writeFileSync(
      join(tpl, 'Dockerfile'),
      'FROM sbx/base\nRUN echo built-remotely > /etc/sbx-remote-marker\n',
    );
    const r = await remoteSbx(
      ['run', 'shell', '--template', './tpl', '--', 'cat', '/etc/sbx-remote-marker'],
      dir,
    );
    ok(r);
    assert.match(r.stdout, /built-remotely/);
    assert.ok(statSync(dir).isDirectory());
  });
});

describe('an engine over ssh:// (an sshd on loopback running `docker system dial-stdio`)', {
  skip: root ? false : 'starting an sshd needs root (test/run.sh runs as root)',
  timeout: 300_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-sshd-'));
  const port = 22000 + (process.pid % 1000);
  let sshd: ReturnType<typeof spawn> | undefined;
  const env = () => ({
    SBX_SSH_COMMAND: `ssh -i ${join(dir, 'id')} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR`,
    DOCKER_HOST: '',
  });

  before(async () => {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'id')]);
    writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id.pub')));
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `ListenAddress 127.0.0.1:${port}`,
        `HostKey ${join(dir, 'host')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        `PidFile ${join(dir, 'pid')}`,
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'UsePAM no',
      ].join('\n'),
    );
    mkdirSync('/run/sshd', { recursive: true });
    sshd = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: 'ignore' });
    for (let i = 0; i < 50 && !existsSync(join(dir, 'pid')); i++)
      await new Promise((r) => setTimeout(r, 100));
  });

  after(async () => {
    sshd?.kill();
    const { cleanupTestResources } = await import('../helpers/engine.js');
    await cleanupTestResources();
  });

  it('runs a sandbox through ssh://; the engine sees this workspace there, so it is mounted, not synced', async () => {
    const ws = await workspace();
    const host = `ssh://root@127.0.0.1:${port}`;
    const r = await sbx(['-H', host, 'run', 'shell', '--', 'sh', '-c', 'echo via-ssh > f'], {
      cwd: ws,
      env: env(),
    });
    ok(r);
    assert.equal(readFileSync(join(ws, 'f'), 'utf8'), 'via-ssh\n');
    assert.doesNotMatch(r.stderr, /synced/);
    const listed = await sbx(['ls', '--json', '--host', host], { env: env() });
    ok(listed);
    const mine = (JSON.parse(listed.stdout) as Array<{ workspace: string; syncVolume: string | null }>).find(
      (s) => s.workspace === ws,
    );
    assert.equal(mine?.syncVolume, null);
    const down = await sbx(['ls', '--host', 'ssh://root@127.0.0.1:1'], { env: env() });
    assert.equal(down.code, 69, down.stderr);
    assert.match(
      down.stderr,
      /No container engine answered at ssh:\/\/root@127\.0\.0\.1:1 \(--host\): ssh to 127\.0\.0\.1:1: .*refused/,
    );
  });
});

describe('--sync on the local engine, as a non-root user', {
  skip: root ? false : 'running sbx as the test user needs root (test/run.sh runs as root)',
  timeout: 300_000,
}, () => {
  after(async () => {
    const { cleanupTestResources } = await import('../helpers/engine.js');
    await cleanupTestResources();
  });

  it('the copy belongs to the user inside, and what comes back belongs to the user here', async () => {
    const ws = await workspace({ owner: TEST_USER });
    mkdirSync(join(ws, 'd'));
    writeFileSync(join(ws, 'd', 'a'), 'a\n');
    execFileSync('chown', ['-R', `${TEST_USER.uid}:${TEST_USER.gid}`, ws]);
    const r = await sbx(
      ['run', 'shell', '--sync', '--', 'sh', '-c', 'stat -c "%u %n" . d/a && echo b > d/b && echo t > t'],
      {
        cwd: ws,
        asUser: TEST_USER,
      },
    );
    ok(r);
    assert.deepEqual(r.stdout.trim().split('\n'), [`${TEST_USER.uid} .`, `${TEST_USER.uid} d/a`]);
    for (const f of ['d/b', 't']) assert.equal(statSync(join(ws, f)).uid, TEST_USER.uid, f);
    ok(await sbx(['rm', '-f', '.'], { cwd: ws, asUser: TEST_USER }));
  });
});

describe('rootless Docker and rootless Podman of an unprivileged user', {
  skip: root ? false : "setting up the test user's rootless engines needs root (test/run.sh runs as root)",
  timeout: 1_800_000,
}, () => {
  // Started by test/helpers/rootless-engines.sh as the user would (and left running, like the others).
  let hosts: string[] = [];
  const userEnv = () => ({ XDG_RUNTIME_DIR: `/run/user/${TEST_USER.uid}` });
  before(() => {
    hosts = execFileSync('bash', [join(ROOT, 'test/helpers/rootless-engines.sh'), TEST_USER.name], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    })
      .trim()
      .split('\n');
  });
  after(async () => {
    const { cleanupTestResources } = await import('../helpers/engine.js');
    for (const host of hosts)
      await cleanupTestResources(new Docker({ socketPath: host.slice('unix://'.length) }));
  });

  for (const [i, kind] of ['Docker', 'Podman'].entries()) {
    it(`rootless ${kind}: what the agent writes in the workspace is the user's, the sandbox reaches the registry through its proxy, Claude Code starts`, async () => {
      const env = { ...userEnv(), DOCKER_HOST: hosts[i]! };
      const as = { asUser: TEST_USER, env };
      // A failure carries the engine's own last words (an HTTP 500 from it says nothing more).
      const engineLog = `/tmp/sbx-test-rootless-${kind.toLowerCase()}.log`;
      const ok = (r: Result, what = 'sbx') => {
        const tail = existsSync(engineLog)
          ? readFileSync(engineLog, 'utf8').split('\n').slice(-40).join('\n')
          : '';
        assert.equal(r.code, 0, `${what} failed: ${r.stderr}\n--- the end of ${engineLog}:\n${tail}`);
      };
      // The base template, built on this engine (minutes the first time; its layer cache after).
      ok(await sbx(['template', 'build', 'shell'], { ...as, timeoutMs: 1_500_000 }), 'template build');
      const doctor = await sbx(['doctor', '--json'], as);
      const checks = (
        JSON.parse(doctor.stdout) as { checks: Array<{ name: string; status: string; detail: string }> }
      ).checks;
      assert.match(checks.find((c) => c.name === 'engine')!.detail, /, rootless$/);
      assert.deepEqual(
        checks.filter((c) => c.name === 'ownership').map((c) => [c.status, c.detail.split(':')[0]]),
        [['ok', `rootless ${kind}`]],
      );

      const ws = await workspace({ owner: TEST_USER });
      const r = await sbx(
        [
          'run',
          'shell',
          '--no-sudo',
          '--',
          'sh',
          '-c',
          'id -u; echo x > f && mkdir d && touch d/g && git add f && git commit -qm inside && curl -sS -o /dev/null -w "%{http_code}\\n" https://registry.npmjs.org/-/ping',
        ],
        { ...as, cwd: ws },
      );
      ok(r);
      // Docker maps only root inside to the user; Podman maps the user to the same UID (keep-id).
      assert.deepEqual(r.stdout.trim().split('\n'), [kind === 'Docker' ? '0' : String(TEST_USER.uid), '200']);
      assert.equal(/--no-sudo takes nothing from it/.test(r.stderr), kind === 'Docker', r.stderr);
      for (const f of ['f', 'd', 'd/g'])
        assert.deepEqual(
          [f, statSync(join(ws, f)).uid, statSync(join(ws, f)).gid],
          [f, TEST_USER.uid, TEST_USER.gid],
        );
      ok(await sbx(['stop', '.'], { ...as, cwd: ws }));
      // Private history: the commit comes to the host as refs/remotes/sbx/NAME/* at the stop.
      assert.match(
        execFileSync(
          'git',
          ['-c', 'safe.directory=*', '-C', ws, 'log', '--remotes=sbx/*', '--format=%an %s'],
          {
            encoding: 'utf8',
          },
        ),
        /Ada Tester inside/,
      );
      ok(await sbx(['rm', '.'], { ...as, cwd: ws }));
      assert.equal(readFileSync(join(ws, 'f'), 'utf8'), 'x\n');
      // The last sandbox gone, a new one still gets out (rootless Podman 4.3 cuts the proxy off then).
      const again = await sbx(['run', 'shell', '--', ...REGISTRY_PING], { ...as, cwd: ws });
      ok(again);
      assert.equal(again.stdout, '200');
      ok(await sbx(['rm', '-f', '.'], { ...as, cwd: ws }));

      // A real agent there: Claude Code starts as the workspace's owner inside, with its state volume.
      ok(await sbx(['template', 'build', 'claude'], { ...as, timeoutMs: 1_500_000 }), 'template build');
      const claude = await sbx(['run', 'claude', '--', '-p', 'hi'], { ...as, cwd: ws });
      assert.match(claude.stdout + claude.stderr, /Not logged in/i, claude.stderr);
      ok(await sbx(['rm', '-f', '.'], { ...as, cwd: ws }));
    });
  }
});
