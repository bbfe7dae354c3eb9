import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { issueLeaf, makeCa } from '../../src/config/egress-ca.js';
import {
  NO_TEST_USER,
  PROXY,
  type Result,
  ROOT,
  RUN_ID,
  sbx,
  TEST_LABEL,
  TEST_USER,
  workspace,
} from '../helpers/cli.js';
import { cleanupTestResources, containersOf, docker, FITTING_LIMITS, until } from '../helpers/engine.js';
import { putImage } from '../helpers/stand-in-registry.js';

after(() => cleanupTestResources());

/** The image the inner engine gets: the seeded base image, saved by the host engine into a tar. */
const IMAGE = 'debian:trixie-slim';
const MEMORY = 768 * 1024 * 1024;
const PIDS = 400;
/** The stand-in registry's name, on the test's own network. */
const REGISTRY = 'registry.sbx.test';

describe('--docker: a Docker engine of the sandbox own, which cannot touch the host', {
  timeout: 1_500_000,
  skip: NO_TEST_USER,
}, () => {
  let ws = '';
  let name = '';
  let tar = '';
  let target = { ip: '', id: '' };
  /** A command in the sandbox as its agent user (the workspace's owner, not root). */
  const inside = (script: string, timeoutMs = 300_000): Promise<Result> =>
    sbx(['exec', name, '--', 'bash', '-c', script], { timeoutMs });
  const ok = (r: Result, what: string) => assert.equal(r.code, 0, `${what}: ${r.stdout}\n${r.stderr}`);

  before(async () => {
    ws = await workspace({ owner: TEST_USER });
    tar = join(ws, 'image.tar');
    execFileSync('docker', ['save', IMAGE, '-o', tar]);
    chmodSync(tar, 0o644);
    chownSync(tar, TEST_USER.uid, TEST_USER.gid);
    // The suite's own server on the host's default bridge: an address the policy refuses (private).
    const c = await docker.createContainer({
      Image: (await docker.getImage('sbx/base:latest').inspect()).Id,
      Entrypoint: ['python3', '-m', 'http.server', '8000'],
      Labels: { [TEST_LABEL]: RUN_ID },
      HostConfig: FITTING_LIMITS,
    });
    await c.start();
    target = { ip: (await c.inspect()).NetworkSettings.IPAddress, id: c.id };
    await until('the target server', async () => {
      return new Promise<boolean>((resolve) => {
        const socket = connect(8000, target.ip, () => {
          socket.destroy();
          resolve(true);
        });
        socket.on('error', () => resolve(false));
      });
    });
  });

  it('refuses --docker with --mount-docker-socket, and makes nothing', async () => {
    const other = await workspace();
    const r = await sbx(['create', 'shell', other, '--docker', '--mount-docker-socket']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--mount-docker-socket would hand it the host's engine/);
    assert.match(r.stderr, /Hint: Drop --mount-docker-socket/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.equal((await containersOf(other)).length, 0);
  });

  it('refuses --docker under gVisor, saying why, and makes nothing', async (t) => {
    const runtimes = Object.keys(((await docker.info()) as { Runtimes?: object }).Runtimes ?? {});
    if (!runtimes.includes('runsc')) return t.skip('the engine has no runsc runtime registered here');
    const other = await workspace();
    const r = await sbx(['create', 'shell', other, '--docker', '--runtime', 'runsc']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /gVisor does not honour file capabilities/);
    assert.equal((await containersOf(other)).length, 0);
  });

  it('creates a sandbox with its own engine; inspect and ls --json show it and its disk', async () => {
    const r = await sbx(
      ['create', 'shell', ws, '--docker', '--memory', String(MEMORY), '--pids-limit', String(PIDS), '--json'],
      { timeoutMs: 900_000 },
    );
    ok(r, 'create --docker');
    name = (JSON.parse(r.stdout) as { name: string }).name;
    const info = await docker.getContainer(name).inspect();
    assert.equal(info.Config.Labels[`dev.sbx.docker-volume`], `${name}-docker`);
    assert.ok(!info.HostConfig.Privileged);
    assert.ok(
      !(info.HostConfig.Binds ?? []).some((b) => b.includes('docker.sock')),
      'no host socket mounted',
    );
    const inspect = JSON.parse((await sbx(['inspect', name, '--json'])).stdout) as {
      docker: boolean;
      dockerDiskBytes: number | null;
    };
    assert.equal(inspect.docker, true);
    assert.equal(typeof inspect.dockerDiskBytes, 'number');
    const ls = JSON.parse((await sbx(['ls', '--json'])).stdout) as Array<{ name: string; docker: boolean }>;
    assert.equal(ls.find((s) => s.name === name)?.docker, true);
    // A --docker request on a sandbox made without one is refused (fixed at creation).
    const plain = await workspace();
    ok(await sbx(['create', 'shell', plain]), 'plain create');
    const again = await sbx(['run', 'shell', plain, '--docker', '--', 'true']);
    assert.equal(again.code, 75, again.stderr);
    assert.match(again.stderr, /--docker applies only when a sandbox is created/);
  });

  it('runs, builds and composes as the agent user, on the inner engine (Podman), not the host', async () => {
    const r = await inside(
      [
        'id -u',
        `docker load -q -i ${tar} >/dev/null`,
        `docker run --rm ${IMAGE} echo hi-from-inside`,
        'docker version | grep -m1 "Podman Engine"',
        'docker ps -a --format "{{.Names}}" | sort | tr "\\n" " "; echo',
      ].join(' && '),
    );
    ok(r, 'load and run');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], String(TEST_USER.uid), 'as the agent user');
    assert.ok(lines.includes('hi-from-inside'), r.stdout);
    assert.match(r.stdout, /Podman Engine/);
    assert.doesNotMatch(r.stdout, new RegExp(name), "the host's containers are not listed");

    const dir = join(ws, 'build');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'Dockerfile'),
      `FROM ${IMAGE}\nRUN echo built-inside > /built\nCMD ["cat", "/built"]\n`,
    );
    writeFileSync(
      join(dir, 'compose.yaml'),
      [
        'services:',
        '  web:',
        `    image: ${IMAGE}`,
        `    command: ["perl", "-MIO::Socket::INET", "-e", "my $$s = IO::Socket::INET->new(LocalPort => 8000, Listen => 5, ReuseAddr => 1) or die; while (my $$c = $$s->accept) { my $$r = <$$c>; print $$c qq(HTTP/1.0 200 OK\\r\\n\\r\\nhello-from-web\\n); close $$c }"]`,
        '  client:',
        // curl, which honours the proxy variables: what a client calling the other service over HTTP does.
        '    image: sbx-inner-curl',
        '    command: ["sleep", "300"]',
        // The service's name kept from the egress proxy, which cannot resolve it (see docs/docker-inside.md).
        '    environment: [NO_PROXY=web, no_proxy=web]',
        '',
      ].join('\n'),
    );
    execFileSync('chown', ['-R', `${TEST_USER.uid}:${TEST_USER.gid}`, dir]);
    const b = await inside(
      [
        `cd ${dir}`,
        'docker build -q -t sbx-inner-built . >/dev/null',
        'docker run --rm sbx-inner-built',
        // An image with the sandbox's curl (Debian's, copied with its libraries): no registry here.
        'mkdir -p curl/root && cp --parents -L /usr/bin/curl $(ldd /usr/bin/curl | grep -o "/[^ ]*") curl/root/',
        `printf 'FROM ${IMAGE}\\nCOPY root/ /\\n' > curl/Dockerfile && docker build -q -t sbx-inner-curl curl >/dev/null`,
        'docker compose up -d --quiet-pull 2>&1 >/dev/null',
        'for i in $(seq 50); do docker compose exec -T client curl -sS -m 10 http://web:8000/ && break; sleep 0.2; done',
        // Without the service in NO_PROXY, curl asks the egress proxy for it, which refuses.
        '(docker compose exec -T -e NO_PROXY= -e no_proxy= client curl -sS -m 10 http://web:8000/ 2>&1 || true)',
        // By address, a container of the inner networks is kept from the proxy by sbx's NO_PROXY.
        'ip=$(docker inspect -f "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}" build-web-1)',
        'echo "by-ip: $(docker run --rm --network build_default sbx-inner-curl curl -sS -m 10 http://$ip:8000/)"',
        'docker compose down 2>&1 >/dev/null',
        'docker ps -aq | wc -l',
      ].join(' && '),
    );
    ok(b, 'build and compose');
    assert.match(b.stdout, /built-inside/);
    assert.match(b.stdout, /^hello-from-web$/m, 'one service reached the other by name, over HTTP');
    assert.match(
      b.stdout,
      /web:8000 refused .*\(web does not resolve\)/,
      'through the proxy, the name is refused',
    );
    assert.match(b.stdout, /^by-ip: hello-from-web$/m, "an inner network's address, directly");
    assert.match(b.stdout, /\n0\n?$/, 'compose down removed its containers');
  });

  it('serves a testcontainers library as the agent user: a container, its published port, its removal', async () => {
    // testcontainers-node 11 (12 asks for Node 22; the sandbox has Debian's Node 20), from the npm
    // registry through the sandbox's proxy. Ryuk, its reaper, is an image on Docker Hub, which no
    // registry here serves: it is disabled, and what it needs (the inner socket mounted into an
    // inner container, talking to the inner engine) is checked below.
    const dir = join(ws, 'tc');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'probe.mjs'),
      [
        "import { connect } from 'node:net';",
        "import { GenericContainer } from 'testcontainers';",
        `const server = 'my $s = IO::Socket::INET->new(LocalPort => 8000, Listen => 5, ReuseAddr => 1) or die; while (my $c = $s->accept) { print $c qq(hello-from-testcontainers\\n); close $c }';`,
        `const c = await new GenericContainer('${IMAGE}').withCommand(['perl', '-MIO::Socket::INET', '-e', server]).withExposedPorts(8000).start();`,
        "const reply = await new Promise((resolve, reject) => { const s = connect(c.getMappedPort(8000), c.getHost()); let d = ''; s.on('data', (x) => { d += x; }); s.on('end', () => resolve(d)); s.on('error', reject); });",
        "console.log('host=' + c.getHost() + ' reply=' + String(reply).trim());",
        'await c.stop();',
        '',
      ].join('\n'),
    );
    execFileSync('chown', ['-R', `${TEST_USER.uid}:${TEST_USER.gid}`, dir]);
    const r = await inside(
      [
        `cd ${dir}`,
        'npm init -y >/dev/null',
        // Without tar-fs's optional Bare runtime packages, which Node does not use (a fresh version of
        // one was once refused with a 403 on the machines the suite runs on).
        'npm install --no-audit --no-fund --omit=optional testcontainers@11.14.0 >/dev/null',
        'TESTCONTAINERS_RYUK_DISABLED=true node probe.mjs',
        'docker ps -aq | wc -l',
        // Ryuk's way to the engine: the socket, mounted into an inner container, answers there.
        `docker run --rm -v /var/run/docker.sock:/var/run/docker.sock ${IMAGE} perl -MIO::Socket::UNIX -e ` +
          `'my $s = IO::Socket::UNIX->new(Peer => "/var/run/docker.sock") or die "$!"; print $s "GET /_ping HTTP/1.0\\r\\n\\r\\n"; print while <$s>'`,
      ].join(' && '),
      600_000,
    );
    ok(r, 'testcontainers');
    assert.match(
      r.stdout,
      /host=localhost reply=hello-from-testcontainers/,
      'reached over its published port',
    );
    assert.match(r.stdout, /^0$/m, 'the container was removed');
    assert.match(
      r.stdout,
      /^Libpod-Api-Version: /m,
      'the inner engine answers on the socket mounted into a container',
    );
  });

  it("gives inner containers no way to the host's engine: no socket, no loopback API, no host address", async () => {
    const r = await inside(
      `docker run --rm ${IMAGE} bash -c '` +
        'ls /var/run/docker.sock /run/docker.sock 2>/dev/null | wc -l; ' +
        'for p in 2375 2376; do (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null && echo API-$p-REACHED || echo api-$p-refused; done; ' +
        `(timeout 5 bash -c "exec 3<>/dev/tcp/${target.ip}/8000") 2>/dev/null && echo HOST-REACHED || echo host-unreachable'`,
    );
    ok(r, 'probe');
    assert.match(r.stdout, /^0$/m, 'no Docker socket in an inner container');
    assert.match(r.stdout, /api-2375-refused/);
    assert.match(r.stdout, /api-2376-refused/);
    assert.match(r.stdout, /host-unreachable/);
    assert.doesNotMatch(r.stdout, /REACHED/);
  });

  it('sends inner containers through the egress proxy: the registry is logged, a refused host stays refused', async () => {
    const r = await inside(
      `docker run --rm ${IMAGE} bash -c '` +
        'echo "proxy=$HTTPS_PROXY"; ' +
        `proxy=\${HTTPS_PROXY#http://}; host=\${proxy%:*}; port=\${proxy##*:}; ` +
        `exec 3<>/dev/tcp/$host/$port; printf "CONNECT registry.npmjs.org:443 HTTP/1.1\\r\\nHost: registry.npmjs.org:443\\r\\n\\r\\n" >&3; head -1 <&3; exec 3<&-; ` +
        `exec 4<>/dev/tcp/$host/$port; printf "GET http://${target.ip}:8000/ HTTP/1.1\\r\\nHost: ${target.ip}:8000\\r\\nConnection: close\\r\\n\\r\\n" >&4; head -1 <&4'`,
    );
    ok(r, 'through the proxy');
    assert.match(r.stdout, /proxy=http:\/\//, 'the proxy variables reach inner containers');
    assert.match(r.stdout, /HTTP\/1\.1 200/, 'the registry is reachable through the proxy');
    assert.match(r.stdout, /HTTP\/1\.1 403/, 'the refused host is refused');
    const log = await sbx(['network', 'log', name, '--json']);
    ok(log, 'network log');
    const entries = JSON.parse(log.stdout) as Array<{ host: string; allowed: boolean }>;
    assert.ok(entries.some((e) => e.host === 'registry.npmjs.org' && e.allowed));
    assert.ok(entries.some((e) => e.host === target.ip && !e.allowed));
    const served = execFileSync('docker', ['logs', target.id], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }).toString();
    assert.doesNotMatch(served, /GET \//, 'the target server got no request');
  });

  it("pulls images through the egress proxy, trusting the user's extra CAs (and refusing without them)", async () => {
    // The suite's stand-in registry (test/helpers/stand-in-registry.ts) serving the seeded image over
    // HTTPS, with a certificate of a CA this test makes, under a name on a network of its own that
    // the run's proxy joins: a host only the proxy can reach.
    const ca = await makeCa('sbx test registry CA');
    const leaf = await issueLeaf(ca, [REGISTRY]);
    const store = mkdtempSync(join(tmpdir(), 'sbx-registry-'));
    const trusted = mkdtempSync(join(tmpdir(), 'sbx-registry-ca-'));
    try {
      writeFileSync(join(trusted, 'test-registry-ca.crt'), ca.cert);
      putImage(store, IMAGE, 'sbx/pulled', 'v1');
      const network = `sbx-test-${RUN_ID}-registry`;
      await docker.createNetwork({ Name: network, Labels: { [TEST_LABEL]: RUN_ID } });
      const registry = await docker.createContainer({
        Image: 'sbx/base:latest',
        User: '0',
        Entrypoint: [
          'node',
          '--input-type=module',
          '-e',
          readFileSync(join(ROOT, 'dist', 'test', 'helpers', 'stand-in-registry.js'), 'utf8'),
        ],
        Env: [
          'REGISTRY_DIR=/registry',
          'REGISTRY_PORT=8443',
          `REGISTRY_CERT=${leaf.cert}`,
          `REGISTRY_KEY=${leaf.key}`,
        ],
        Labels: { [TEST_LABEL]: RUN_ID },
        HostConfig: { ...FITTING_LIMITS, NetworkMode: network, Binds: [`${store}:/registry:ro`] },
        NetworkingConfig: { EndpointsConfig: { [network]: { Aliases: [REGISTRY] } } },
      });
      await registry.start();
      await docker.getNetwork(network).connect({ Container: PROXY });
      const ref = `${REGISTRY}:8443/sbx/pulled:v1`;

      // The sandbox made without the test CA: the pull reaches the registry through the proxy, and
      // the inner engine refuses its certificate.
      ok(await sbx(['network', 'allow', name, REGISTRY]), 'network allow');
      const refused = await inside(`docker pull -q ${ref}`);
      assert.notEqual(refused.code, 0, refused.stdout);
      assert.match(refused.stderr, /certificate signed by unknown authority/, refused.stderr);

      // A sandbox made with it (SBX_CA_CERTS; a prebuilt template, so only the engine layer is built).
      const trustedWs = await workspace({ owner: TEST_USER });
      const created = await sbx(
        [
          'create',
          'shell',
          trustedWs,
          '--template',
          'sbx/base:latest',
          '--docker',
          '--allow-host',
          REGISTRY,
          '--json',
        ],
        { env: { SBX_CA_CERTS: trusted }, timeoutMs: 900_000 },
      );
      ok(created, 'create with the test CA');
      const other = (JSON.parse(created.stdout) as { name: string }).name;
      const pulled = await sbx([
        'exec',
        other,
        '--',
        'bash',
        '-c',
        `docker pull -q ${ref} && docker run --rm ${ref} echo pulled-and-ran`,
      ]);
      ok(pulled, 'pull with the test CA');
      assert.match(pulled.stdout, /pulled-and-ran/);
      const log = JSON.parse((await sbx(['network', 'log', other, '--json'])).stdout) as Array<{
        host: string;
        allowed: boolean;
      }>;
      assert.ok(
        log.some((e) => e.host === REGISTRY && e.allowed),
        `the pull went through the proxy: ${JSON.stringify(log)}`,
      );
      const served = execFileSync('docker', ['logs', registry.id], {
        stdio: ['ignore', 'pipe', 'pipe'],
      }).toString();
      assert.match(served, /GET \/v2\/sbx\/pulled\/manifests\/v1/, served);
      assert.match(served, /GET \/v2\/sbx\/pulled\/blobs\/sha256:/, served);
      ok(await sbx(['rm', '-f', other]), 'rm the second sandbox');
    } finally {
      rmSync(store, { recursive: true, force: true });
      rmSync(trusted, { recursive: true, force: true });
    }
  });

  it("keeps inner containers within the sandbox's memory and process limits", async () => {
    const mem = await inside(
      `docker run --rm ${IMAGE} bash -c 'head -c 2000m /dev/zero | tail >/dev/null'; echo "exit=$?"; ` +
        'cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.peak',
    );
    const exit = Number(/exit=(\d+)/.exec(mem.stdout)?.[1]);
    assert.notEqual(exit, 0, `the 2 GB hog was stopped: ${mem.stdout}${mem.stderr}`);
    // cgroup v1 may count a page or so past the limit before it reclaims or kills.
    const peak = Number(mem.stdout.trim().split('\n').at(-1));
    assert.ok(peak > 0 && peak <= MEMORY + 1024 * 1024, `peak ${peak} within the sandbox's ${MEMORY}`);
    assert.equal((await docker.getContainer(name).inspect()).State.Running, true, 'the sandbox still runs');

    const pids = await inside(
      `docker run --rm ${IMAGE} bash -c 'for i in $(seq ${PIDS + 100}); do sleep 3 & done 2>&1 | tail -1; wait'; ` +
        'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max',
    );
    assert.match(`${pids.stdout}${pids.stderr}`, /fork|Resource temporarily unavailable/i, pids.stdout);
    assert.match(pids.stdout, new RegExp(`^${PIDS}$`, 'm'), "the sandbox's pids limit is the one in force");
    // The inner engine works again once the processes are gone.
    await until(
      'the inner engine after the pids test',
      async () => (await inside('docker ps -q')).code === 0,
    );
  });

  it("does not let root in the sandbox raise the sandbox's own limits through namespaces of its own", async () => {
    // The attack: root maps itself into a user namespace with a cgroup namespace of its own, mounts
    // the cgroup hierarchy there (rooted at the sandbox's cgroup) and writes its limit files.
    const r = await sbx([
      'exec',
      '-u',
      'root',
      name,
      '--',
      'sh',
      '-c',
      [
        "unshare -U --map-root-user -m -C sh -c 'mkdir -p /tmp/cg && mount -t cgroup -o pids none /tmp/cg && echo max > /tmp/cg/pids.max' 2>&1; echo map-root=$?",
        'unshare -U -m -C true 2>&1; echo cgroupns=$?',
        'unshare -U --map-root-user true 2>&1; echo root-map=$?',
        'cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max',
      ].join('; '),
    ]);
    assert.match(r.stdout, /map-root=[1-9]/, r.stdout);
    assert.match(r.stdout, /cgroupns=[1-9]/, 'a cgroup namespace is refused');
    assert.match(r.stdout, /root-map=[1-9]/, "the sandbox's root cannot map itself (no CAP_SETFCAP)");
    assert.match(r.stdout, new RegExp(`^${PIDS}$`, 'm'), "the sandbox's pids limit is unchanged");
    assert.equal(
      (await docker.getContainer(name).inspect()).HostConfig.PidsLimit,
      PIDS,
      'the engine still sees its limit',
    );
  });

  it("keeps the inner engine's images and volumes across stop/start", async () => {
    ok(await inside('docker volume create sbx-keep >/dev/null'), 'volume create');
    ok(await sbx(['stop', name]), 'stop');
    ok(await sbx(['start', name]), 'start');
    const r = await inside(
      'docker images --format "{{.Repository}}" | sort | tr "\\n" " "; echo; docker volume ls -q',
    );
    ok(r, 'after start');
    assert.match(r.stdout, /sbx-inner-built/);
    assert.match(r.stdout, /debian/);
    assert.match(r.stdout, /sbx-keep/);
    ok(await inside(`docker run --rm ${IMAGE} true`), 'runs after a restart');
  });

  it("says why when the inner engine does not start: its log's last lines and a hint", async () => {
    ok(await sbx(['exec', '-u', 'root', name, '--', 'chmod', '-x', '/usr/bin/podman']), 'break podman');
    ok(await sbx(['stop', name]), 'stop');
    const r = await sbx(['start', name]);
    assert.equal(r.code, 69, r.stderr);
    assert.match(r.stderr, /The Docker engine inside .* did not start within 30s/);
    assert.match(r.stderr, /engine\.log/);
    assert.match(r.stderr, /Permission denied/, 'the log line saying why');
    assert.match(r.stderr, /Hint: /);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    // The plain `sbx run` (sbx's fast path) says the same and does not launch the agent anyway.
    ok(await sbx(['stop', name]), 'stop');
    const run = await sbx(['run', 'shell', '--', 'sh', '-c', 'echo ran >> launched.txt'], { cwd: ws });
    assert.equal(run.code, 69, run.stderr);
    assert.match(run.stderr, /The Docker engine inside .* did not start within 30s/);
    assert.equal(existsSync(join(ws, 'launched.txt')), false, 'the agent was not launched');
  });

  it('sbx rm leaves nothing of the inner engine on the host', async () => {
    ok(await sbx(['rm', '-f', name]), 'rm');
    await assert.rejects(docker.getVolume(`${name}-docker`).inspect(), 'the inner engine volume is gone');
    assert.equal((await containersOf(ws)).length, 0);
  });
});
