import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import tarStream from 'tar-stream';
import {
  NO_TEST_USER,
  RUN_ID,
  type RunOptions,
  sbx as sbxCli,
  TEST_LABEL,
  TEST_USER,
  workspace,
} from '../helpers/cli.js';
import { cleanupTestResources, containersOf, docker, until } from '../helpers/engine.js';
import { putBlob, putManifest, standInRegistry } from '../helpers/stand-in-registry.js';

/** The workspaces approved here (as whom), for their approvals to be forgotten after the suite. */
const approved: RunOptions[] = [];
/**
 * sbx as the user whose own project each workspace here is: its dev container is approved (`sbx
 * trust`, test/e2e/trust.test.ts tests that) before each run or create, as they change between runs.
 */
const sbx: typeof sbxCli = async (args, options = {}) => {
  if ((args[0] === 'run' || args[0] === 'create') && options.cwd) {
    const devcontainer = args.indexOf('--devcontainer');
    await sbxCli(
      ['trust', ...(devcontainer > 0 ? ['--devcontainer', args[devcontainer + 1]!] : [])],
      options,
    );
    approved.push(options);
  }
  return sbxCli(args, options);
};
after(async () => {
  for (const options of approved) await sbxCli(['trust', '--revoke'], options);
});

after(async () => {
  await cleanupTestResources();
  // A layer build that failed (no apt-get) leaves its first steps as children of the project image,
  // which the engine then does not delete by id: untag it (the steps stay as build cache).
  for (const img of await docker.listImages({ filters: { label: [`${TEST_LABEL}=${RUN_ID}`] } }))
    for (const tag of img.RepoTags ?? [])
      await docker
        .getImage(tag)
        .remove()
        .catch(() => {});
});

// The named volume of the dev container's mounts (sbx labels it, so the run's cleanup removes it).
const VOLUME = `sbx-test-${RUN_ID}-dc-cache`;

// A port for forwardPorts, unlikely to be taken by another run on this host.
const PORT = 20_000 + (process.pid % 20_000);

const devcontainerJson = (
  hello: string,
  postCreate = 'echo created >> dc-created.txt && id -u >> dc-created.txt',
  port = PORT,
) => `// The project's dev container: JSONC, with comments and trailing commas.
{
  "name": "sbx-dc-test",
  /* built FROM the seeded Debian image, with a tool the base template lacks */
  "build": {
    "dockerfile": "Dockerfile",
    "args": { "TOOL": "tree", },
  },
  "features": { "./greeter": { "greeting": "hola", }, },
  "containerEnv": {
    "DC_HELLO": "${hello}",
    "DC_WS": "\${containerWorkspaceFolder}",
    "DC_LOCAL": "\${localEnv:SBX_DC_TEST_VAR}",
  },
  "postCreateCommand": "${postCreate}",
  "postStartCommand": ["sh", "-c", "echo started >> dc-started.txt"],
  "forwardPorts": [${port}],
  "runArgs": ["--privileged"],
  "mounts": [
    "source=\${localWorkspaceFolder}/.devcontainer/greeter,target=/opt/greeter,type=bind,readonly",
    { "source": "${VOLUME}-\${localWorkspaceFolderBasename}", "target": "/cache", "type": "volume" },
  ],
  "remoteUser": "vscode",
}
`;

async function devcontainerWorkspace(owner?: typeof TEST_USER, port = PORT): Promise<string> {
  const ws = await workspace();
  const dir = join(ws, '.devcontainer');
  mkdirSync(join(dir, 'greeter'), { recursive: true });
  writeFileSync(
    join(dir, 'Dockerfile'),
    [
      'FROM debian:trixie-slim',
      'ARG TOOL',
      'RUN apt-get update && apt-get install -y --no-install-recommends $TOOL && rm -rf /var/lib/apt/lists/*',
      // A tool in a folder of the image's own ENV PATH, and one in its user's home (like rustup's ~/.cargo/bin).
      `RUN mkdir -p /opt/dc-tools/bin && printf '#!/bin/sh\\necho path-tool-ok\\n' > /opt/dc-tools/bin/dc-path-tool && chmod 755 /opt/dc-tools/bin/dc-path-tool`,
      'ENV PATH=/opt/dc-tools/bin:$PATH',
      'RUN useradd --create-home --uid 1000 --shell /bin/bash vscode && chmod 755 /home/vscode',
      'USER vscode',
      `RUN mkdir -p /home/vscode/.cargo/bin && printf '#!/bin/sh\\necho home-tool-ok\\n' > /home/vscode/.cargo/bin/dc-home-tool && chmod 755 /home/vscode/.cargo/bin/dc-home-tool`,
      '',
    ].join('\n'),
  );
  writeFileSync(join(dir, 'devcontainer.json'), devcontainerJson('from-devcontainer', undefined, port));
  writeFileSync(
    join(dir, 'greeter', 'devcontainer-feature.json'),
    '{ "id": "greeter", "options": { "greeting": { "type": "string", "default": "hello" } } }\n',
  );
  writeFileSync(join(dir, 'greeter', 'install.sh'), '#!/bin/sh\nset -e\necho "$GREETING" > /etc/greeting\n', {
    mode: 0o755,
  });
  if (owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, ws]);
  return ws;
}

const get = (port: number) =>
  new Promise<string>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/', timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => {
        body += d;
      });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });

/**
 * The suite's stand-in registry (test/helpers/stand-in-registry.ts) on loopback: one feature (files
 * packed as its tar layer) at /v2/features/hello, behind the anonymous token flow registries such as
 * ghcr.io use.
 */
async function featureRegistry(files: Record<string, string>) {
  const pack = tarStream.pack();
  for (const [name, content] of Object.entries(files))
    pack.entry({ name: `./${name}`, mode: name.endsWith('.sh') ? 0o755 : 0o644 }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  const dir = mkdtempSync(join(tmpdir(), 'sbx-registry-'));
  const layer = putBlob(dir, Buffer.concat(chunks));
  putManifest(dir, 'features/hello', '1', {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.devcontainers', digest: `sha256:${'0'.repeat(64)}`, size: 0 },
    layers: [{ mediaType: 'application/vnd.devcontainers.layer.v1+tar', ...layer }],
  });
  return { ...(await standInRegistry(dir, { token: true })), digest: layer.digest, dir };
}

/** A loopback port nothing listens on (taken, then released). */
async function closedPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

describe('sbx run in a workspace with a dev container', { timeout: 1_500_000 }, () => {
  let ws: string;

  it('builds the project image, layers sbx on top, and honours env, features and postCreateCommand', async () => {
    ws = await devcontainerWorkspace();
    const r = await sbx(
      [
        'run',
        'shell',
        '--',
        'sh',
        '-c',
        'tree --version && dc-path-tool && dc-home-tool && echo "hello=$DC_HELLO ws=$DC_WS local=$DC_LOCAL" && cat /etc/greeting && cat dc-created.txt && id -un && grep ^CapBnd /proc/self/status && test -f /opt/greeter/install.sh && ! touch /opt/greeter/x 2>/dev/null && sudo touch /cache/ok && echo mounts-ok',
      ],
      { cwd: ws, env: { SBX_DC_TEST_VAR: 'from-host' }, timeoutMs: 1_200_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^tree v/m, 'the tool the Dockerfile installs runs');
    assert.match(r.stdout, /^path-tool-ok$/m, "the image's ENV PATH is kept");
    assert.match(r.stdout, /^home-tool-ok$/m, "the image user's ~/.cargo/bin is on the agent's PATH");
    assert.match(r.stdout, new RegExp(`hello=from-devcontainer ws=${ws} local=from-host`));
    assert.match(r.stdout, /^hola$/m, 'the local feature ran with its option');
    assert.match(
      r.stdout,
      /^created\n0$/m,
      'postCreateCommand ran once, as the agent user (the owner, root here)',
    );
    assert.match(r.stdout, /^root$/m);
    assert.match(
      r.stdout,
      /^mounts-ok$/m,
      'the bind mount is there, read-only, and the named volume is writable',
    );
    // Said once, with what was not applied.
    assert.equal(r.stderr.match(/from the dev container/g)?.length, 1, r.stderr);
    assert.match(r.stderr, /runArgs \["--privileged"\]: not applied/);
    assert.match(r.stderr, /remoteUser: the agent runs as sbx's agent user/);
    assert.equal(readFileSync(join(ws, 'dc-created.txt'), 'utf8'), 'created\n0\n');

    const [c] = await containersOf(ws);
    assert.ok(c, 'a sandbox exists');
    assert.match(c.Image, /^sbx\/devcontainer-sbx-ws-[a-z0-9]+:base-[0-9a-f]{12}$/);
    const info = await docker.getContainer(c.Id).inspect();
    assert.equal(info.HostConfig.Privileged, false, 'runArgs --privileged is not applied');
    // From inside: the bounding set lacks what sbx drops (NET_RAW, 13) and what --privileged would give (SYS_ADMIN, 21).
    const bnd = BigInt(`0x${/^CapBnd:\s*([0-9a-f]+)$/m.exec(r.stdout)![1]}`);
    assert.equal(bnd & (1n << 13n), 0n, 'NET_RAW is dropped');
    assert.equal(bnd & (1n << 21n), 0n, 'no SYS_ADMIN');
    assert.match(
      info.HostConfig.NetworkMode ?? '',
      /^sbx-/,
      "the sandbox is on its own network behind sbx's proxy",
    );
    assert.deepEqual(info.HostConfig.CapAdd ?? [], []);
    assert.ok(info.Config.Env.includes('DC_HELLO=from-devcontainer'));
    const volume = info.Mounts.find((m) => m.Destination === '/cache');
    assert.equal(volume?.Name, `${VOLUME}-${ws.split('/').pop()}`);
  });

  it('does not run postCreateCommand again on reattach', async () => {
    const r = await sbx(['run', 'shell', '--', 'cat', 'dc-created.txt'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'created\n0\n');
    assert.doesNotMatch(r.stderr, /from the dev container/);
  });

  it('runs postStartCommand at each start', async () => {
    assert.equal(readFileSync(join(ws, 'dc-started.txt'), 'utf8'), 'started\n');
    assert.equal((await sbx(['stop', '.'], { cwd: ws })).code, 0);
    const r = await sbx(['run', 'shell', '--', 'true'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(readFileSync(join(ws, 'dc-started.txt'), 'utf8'), 'started\nstarted\n');
  });

  it('publishes forwardPorts on 127.0.0.1', async () => {
    const name = (await containersOf(ws))[0]!.Names[0]!.replace(/^\//, '');
    const r = await sbx([
      'exec',
      name,
      '--',
      'sh',
      '-c',
      `mkdir -p /tmp/www && echo dc-port-ok > /tmp/www/index.html && cd /tmp/www && nohup python3 -m http.server ${PORT} >/dev/null 2>&1 &`,
    ]);
    assert.equal(r.code, 0, r.stderr);
    let body = '';
    await until(`the forwarded port ${PORT} answers`, async () => {
      body = await get(PORT).catch(() => '');
      return body.includes('dc-port-ok');
    });
    assert.match(body, /dc-port-ok/);
  });

  it('lists the image under sbx template ls', async () => {
    const r = await sbx(['template', 'ls', '--json'], { cwd: ws });
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{ origin: string; state: string; image: string }>;
    const dc = rows.find((t) => t.origin === 'devcontainer');
    assert.ok(dc, r.stdout);
    assert.equal(dc.state, 'built');
  });

  it('does not rebuild an unchanged dev container, and rebuilds an edited one', async () => {
    assert.equal((await sbx(['rm', '-f', '.'], { cwd: ws })).code, 0);
    const same = await sbx(['run', 'shell', '--debug', '--', 'true'], { cwd: ws });
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stderr, /inspect image sbx\/devcontainer-/, 'the debug log shows the image lookup');
    assert.doesNotMatch(same.stderr, /build image/, 'no build call');

    assert.equal((await sbx(['rm', '-f', '.'], { cwd: ws })).code, 0);
    // The edit also makes postCreateCommand fail: the sandbox is kept, and the error says how to retry.
    writeFileSync(
      join(ws, '.devcontainer', 'devcontainer.json'),
      devcontainerJson('edited', 'echo about to fail && exit 3'),
    );
    const edited = await sbx(['run', 'shell', '--debug', '--', 'true'], { cwd: ws, timeoutMs: 600_000 });
    assert.match(edited.stderr, /build image sbx\/devcontainer-/, 'an edited dev container is rebuilt');
    assert.equal(edited.code, 65, edited.stderr);
    assert.match(edited.stderr, /about to fail/, 'its output is shown');
    assert.match(edited.stderr, /postCreateCommand\) failed .*exited with 3\. The sandbox is kept/);
    assert.match(edited.stderr, /Hint: .*sbx shell .*retry with `sbx exec /);
    const [kept] = await containersOf(ws);
    assert.ok(kept, 'the sandbox is kept for inspection');
    const look = await sbx([
      'exec',
      kept.Names[0]!.replace(/^\//, ''),
      '--',
      'sh',
      '-c',
      'echo "hello=$DC_HELLO"',
    ]);
    assert.match(look.stdout, /hello=edited/);
  });

  it('runs Claude Code with its bypass flag on the dev container', async () => {
    assert.equal((await sbx(['rm', '-f', '.'], { cwd: ws })).code, 0);
    writeFileSync(join(ws, '.devcontainer', 'devcontainer.json'), devcontainerJson('from-devcontainer'));
    const r = await sbx(['run', 'claude', '--', '-p', 'hi'], { cwd: ws, timeoutMs: 900_000 });
    assert.match(r.stdout + r.stderr, /Not logged in/i, r.stderr);
    assert.doesNotMatch(r.stdout + r.stderr, /cannot be used with root/i);
    assert.match(
      r.stderr,
      /for claude \(sbx\/devcontainer-[^:]+:claude-[0-9a-f]{12}\), from the dev container/,
    );
  });

  it('as a non-root host user: the agent has its UID, files written inside belong to it, Claude Code starts', {
    skip: NO_TEST_USER,
  }, async () => {
    const own = await devcontainerWorkspace(TEST_USER, PORT + 1);
    const r = await sbx(['run', 'shell', '--', 'sh', '-c', 'id -u && touch written-inside'], {
      cwd: own,
      asUser: TEST_USER,
      timeoutMs: 900_000,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^4242$/m);
    assert.equal(statSync(join(own, 'written-inside')).uid, TEST_USER.uid);
    assert.equal(statSync(join(own, 'dc-created.txt')).uid, TEST_USER.uid);
    assert.equal(readFileSync(join(own, 'dc-created.txt'), 'utf8'), `created\n${TEST_USER.uid}\n`);
    assert.equal((await sbx(['rm', '-f', '.'], { cwd: own, asUser: TEST_USER })).code, 0);
    const claude = await sbx(['run', 'claude', '--', '-p', 'hi'], {
      cwd: own,
      asUser: TEST_USER,
      timeoutMs: 900_000,
    });
    assert.match(claude.stdout + claude.stderr, /Not logged in/i, claude.stderr);
  });

  it('refuses malformed JSONC with its line and column, and creates nothing', async () => {
    const bad = await workspace();
    mkdirSync(join(bad, '.devcontainer'));
    writeFileSync(
      join(bad, '.devcontainer', 'devcontainer.json'),
      '{\n  // a comment is fine\n  "image": "debian:trixie-slim"\n  "containerEnv": {}\n}\n',
    );
    const r = await sbx(['run', 'shell', '--', 'true'], { cwd: bad });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /devcontainer\.json:4:3: CommaExpected/);
    assert.match(r.stderr, /Hint:/);
    assert.deepEqual(await containersOf(bad), []);
    // --template wins over the dev container.
    const t = await sbx(['run', 'shell', '--template', 'base', '--', 'true'], { cwd: bad });
    assert.equal(t.code, 0, t.stderr);
  });

  it('installs a feature from a registry (the anonymous token flow, cached by digest), and names one that cannot be fetched', async () => {
    const registry = await featureRegistry({
      'devcontainer-feature.json': `{ "id": "hello", "options": { "greeting": { "type": "string", "default": "hi" } }, "containerEnv": { "PATH": "/opt/hello/bin:\${PATH}" } }\n`,
      // A tool in a folder the feature's containerEnv puts on the PATH, saying the option it was installed with.
      'install.sh': [
        '#!/bin/sh',
        'set -e',
        'mkdir -p /opt/hello/bin',
        `printf '#!/bin/sh\\necho "%s from the registry"\\n' "$GREETING" > /opt/hello/bin/hello-feature`,
        'chmod 755 /opt/hello/bin/hello-feature',
        '',
      ].join('\n'),
    });
    try {
      const ws = await workspace();
      writeFileSync(
        join(ws, '.devcontainer.json'),
        `{ "image": "debian:trixie-slim", "features": { "localhost:${registry.port}/features/hello:1": { "greeting": "bonjour" } } }\n`,
      );
      const cache = mkdtempSync(join(tmpdir(), 'sbx-cache-'));
      const r = await sbx(['run', 'shell', '--', 'hello-feature'], {
        cwd: ws,
        env: { SBX_CACHE_DIR: cache },
        timeoutMs: 900_000,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(
        r.stdout,
        'bonjour from the registry\n',
        'the feature ran with its option, and its containerEnv put its tool on the PATH',
      );
      assert.deepEqual(registry.paths, [
        '/v2/features/hello/manifests/1',
        '/token?service=stand-in&scope=repository%3Afeatures%2Fhello%3Apull',
        '/v2/features/hello/manifests/1',
        `/v2/features/hello/blobs/${registry.digest}`,
      ]);
      assert.ok(
        statSync(join(cache, 'features', registry.digest.replace(':', '-'), 'install.sh')).isFile(),
        'kept in the cache under its digest',
      );
      // A second sandbox asks for the manifest only: the layer comes from the cache.
      assert.equal((await sbx(['rm', '-f', '.'], { cwd: ws })).code, 0);
      registry.paths.length = 0;
      const again = await sbx(['run', 'shell', '--', 'hello-feature'], {
        cwd: ws,
        env: { SBX_CACHE_DIR: cache },
      });
      assert.equal(again.code, 0, again.stderr);
      assert.ok(!registry.paths.some((p) => p.includes('/blobs/')), registry.paths.join('\n'));

      // A registry that does not answer (a closed port on loopback): the feature is named, nothing is made.
      const closed = await workspace();
      writeFileSync(
        join(closed, '.devcontainer.json'),
        `{ "image": "debian:trixie-slim", "features": { "localhost:${await closedPort()}/features/gone:1": {} } }\n`,
      );
      const failed = await sbx(['run', 'shell', '--', 'true'], {
        cwd: closed,
        env: { SBX_CACHE_DIR: cache },
      });
      assert.equal(failed.code, 68, failed.stderr);
      assert.match(
        failed.stderr,
        /feature localhost:\d+\/features\/gone:1 could not be fetched .*ECONNREFUSED/,
      );
      assert.match(failed.stderr, /Hint: .*vendor the feature/);
      assert.deepEqual(await containersOf(closed), []);
    } finally {
      registry.server.close();
      rmSync(registry.dir, { recursive: true, force: true });
    }
  });

  it('builds the service a dockerComposeFile names, with its environment, and says the other services are not started', async () => {
    const ws = await workspace();
    mkdirSync(join(ws, '.devcontainer'));
    writeFileSync(
      join(ws, '.devcontainer', 'app.Dockerfile'),
      'FROM debian:trixie-slim\nARG GREETING\nRUN echo "$GREETING from the compose build" > /etc/compose-built\n',
    );
    writeFileSync(
      join(ws, '.devcontainer', 'compose.yml'),
      [
        'services:',
        '  app:',
        '    build:',
        '      context: .',
        '      dockerfile: app.Dockerfile',
        '      args:',
        '        GREETING: salut',
        '    environment:',
        '      COMPOSE_SAYS: hello',
        '    volumes: [ "..:/workspaces/app:cached" ]',
        '  db:',
        '    image: postgres:16',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(ws, '.devcontainer', 'devcontainer.json'),
      '{ "dockerComposeFile": "compose.yml", "service": "app", "runServices": ["app", "db"], "workspaceFolder": "/workspaces/app" }\n',
    );
    const r = await sbx(
      ['run', 'shell', '--', 'sh', '-c', 'cat /etc/compose-built && echo "says=$COMPOSE_SAYS"'],
      {
        cwd: ws,
        timeoutMs: 900_000,
      },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /^salut from the compose build$/m,
      "the service's Dockerfile was built with its args",
    );
    assert.match(r.stdout, /^says=hello$/m, "the service's environment is set");
    assert.match(r.stderr, /the other services \(db\) are not started/);
    assert.match(r.stderr, /service app: volumes not applied/);
    assert.match(r.stderr, /from the dev container/);
  });

  it("starts the other compose services in a --docker sandbox's own engine, reachable by name on its network, at each start", {
    skip: NO_TEST_USER,
  }, async () => {
    // The inner engine runs as the agent user: the workspace is a non-root user's, like a developer's.
    const ws = await workspace({ owner: TEST_USER });
    mkdirSync(join(ws, '.devcontainer'));
    const server =
      '$$s = IO::Socket::INET->new(LocalPort => 8089, Listen => 5, ReuseAddr => 1) or die; while ($$c = $$s->accept) { <$$c>; print $$c "HTTP/1.0 200 OK\\r\\n\\r\\nfrom-web\\n"; close $$c }';
    writeFileSync(
      join(ws, '.devcontainer', 'compose.yml'),
      [
        'services:',
        '  app:',
        '    image: debian:trixie-slim',
        '  web:',
        '    image: debian:trixie-slim',
        // Nothing is pulled (no registry here): the test loads the image into the inner engine.
        '    pull_policy: never',
        `    command: ["perl", "-MIO::Socket::INET", "-e", ${JSON.stringify(server)}]`,
        '    ports: [ "9999:8089" ]',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(ws, '.devcontainer', 'devcontainer.json'),
      '{ "dockerComposeFile": "compose.yml", "service": "app" }\n',
    );
    for (const f of ['.devcontainer', '.devcontainer/compose.yml', '.devcontainer/devcontainer.json'])
      execFileSync('chown', [`${TEST_USER.uid}:${TEST_USER.gid}`, join(ws, f)]);
    // The first start finds no image for the service: a clear error, the sandbox kept to look into.
    const created = await sbx(['create', 'shell', '--docker', '--json'], { cwd: ws, timeoutMs: 900_000 });
    assert.equal(created.code, 65, created.stderr);
    assert.match(
      created.stderr,
      /The dev container's compose services .* failed in (\S+): `docker compose up -d web`/,
    );
    assert.match(created.stderr, /Hint: .*docker compose -p \S+ ps -a/);
    const name = (await containersOf(ws))[0]!.Names[0]!.replace(/^\//, '');
    const tar = join(ws, 'image.tar');
    execFileSync('docker', ['save', 'debian:trixie-slim', '-o', tar]);
    execFileSync('chown', [`${TEST_USER.uid}:${TEST_USER.gid}`, tar]);
    const load = await sbx(['exec', name, '--', 'docker', 'load', '-i', tar], { timeoutMs: 300_000 });
    assert.equal(load.code, 0, load.stderr);
    assert.equal((await sbx(['stop', name])).code, 0);
    // Started again (by sbx run's reattach), the service runs and answers by its name, directly (not
    // through the egress proxy, which cannot know it), on the sandbox's own network.
    const r = await sbx(
      [
        'run',
        'shell',
        '--',
        'sh',
        '-c',
        'for i in $(seq 50); do curl -sf http://web:8089/ && break; sleep 0.2; done; getent hosts web; docker ps --format "{{.Names}} {{.Status}}"; echo "overrides left: $(grep -ls "network_mode: host" /tmp/tmp.* | wc -l)"',
      ],
      { cwd: ws, timeoutMs: 300_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^from-web$/m, r.stdout);
    assert.match(r.stdout, /^127\.0\.0\.1\s+web/m);
    assert.match(r.stdout, /web-1 Up/);
    // The compose override sbx wrote for `up` is gone again (two starts so far).
    assert.match(r.stdout, /^overrides left: 0$/m);
    assert.doesNotMatch(r.stderr, /not started/);
    // Not on the host's engine: only the sandbox is there.
    assert.deepEqual(
      (await docker.listContainers({ all: true })).filter((c) => c.Names.some((n) => n.includes('web-1'))),
      [],
    );
    assert.equal((await sbx(['rm', '-f', name])).code, 0);
  });

  it('in strict mode, refuses a dev container that would widen the boundary, listing what, and creates nothing', async () => {
    const wide = await workspace();
    writeFileSync(
      join(wide, '.devcontainer.json'),
      '{ "image": "debian:trixie-slim", "runArgs": ["--init", "--privileged", "--pid=host"], "capAdd": ["SYS_ADMIN"], "mounts": ["source=/var/run/docker.sock,target=/var/run/docker.sock,type=bind"] }\n',
    );
    const env = { SBX_CONFIG_DIR: mkdtempSync(join(tmpdir(), 'sbx-cfg-')) };
    assert.equal((await sbx(['config', 'set', 'devcontainer', 'strict'], { env })).code, 0);
    const r = await sbx(['run', 'shell', '--', 'true'], { cwd: wide, env });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /strict mode \(config devcontainer=strict\) refuses; nothing was created/);
    assert.match(r.stderr, /- runArgs \["--privileged","--pid=host"\]/);
    assert.match(r.stderr, /- capAdd \["SYS_ADMIN"\]/);
    assert.match(r.stderr, /- mounts: binds \/var\/run\/docker\.sock, outside the workspace/);
    assert.match(r.stderr, /Hint: .*sbx config set devcontainer auto/);
    assert.deepEqual(await containersOf(wide), []);
  });

  // Images sbx does not control. The sandboxes are made by root for workspaces a user owns: the
  // agent gets the owner's UID (see sandboxOwner), on an image without usermod too.
  const ownedWorkspace = async (dockerfile: string) => {
    const ws = await workspace();
    mkdirSync(join(ws, '.devcontainer'));
    writeFileSync(join(ws, '.devcontainer', 'Dockerfile'), dockerfile);
    writeFileSync(
      join(ws, '.devcontainer', 'devcontainer.json'),
      '{ "build": { "dockerfile": "Dockerfile" } }\n',
    );
    execFileSync('chown', ['-R', `${TEST_USER.uid}:${TEST_USER.gid}`, ws]);
    return ws;
  };

  it('runs the shell on a glibc image without apt or dpkg as the workspace owner, and refuses claude saying why', async () => {
    const ws = await ownedWorkspace(
      'FROM debian:trixie-slim\nRUN rm -rf /usr/bin/apt* /usr/bin/dpkg* /var/lib/dpkg /etc/apt\n',
    );
    const r = await sbx(
      [
        'run',
        'shell',
        '--',
        'sh',
        '-c',
        'id -u && touch written-inside && ! command -v apt-get && echo no-apt',
      ],
      { cwd: ws, timeoutMs: 600_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${TEST_USER.uid}\nno-apt\n`);
    assert.equal(
      statSync(join(ws, 'written-inside')).uid,
      TEST_USER.uid,
      "files written inside are the owner's",
    );
    assert.match(
      r.stderr,
      /its image has no package manager, so sbx added only what it brings itself .*it lacks sudo, git, tmux/,
    );
    assert.equal((await sbx(['rm', '-f', '.'], { cwd: ws })).code, 0);

    const claude = await sbx(['run', 'claude', '--', '-p', 'hi'], { cwd: ws, timeoutMs: 300_000 });
    assert.equal(claude.code, 65, claude.stderr);
    assert.match(
      claude.stderr,
      /claude cannot run on the dev container's image \(built from .*\): claude is installed with npm, which this image lacks \(it has: glibc, no package manager, no Node\.js\)/,
    );
    assert.match(claude.stderr, /Hint: Run `sbx run shell` there.*--template/);
    assert.deepEqual(await containersOf(ws), []);
  });

  it('runs the shell on a musl busybox image made FROM scratch, and refuses claude saying why', async () => {
    const ws = await ownedWorkspace(
      [
        // Debian's static busybox and musl's loader, on an empty image: no package manager, no glibc.
        'FROM debian:trixie-slim AS musl',
        'RUN apt-get update && apt-get install -y --no-install-recommends busybox-static musl && rm -rf /var/lib/apt/lists/* \\',
        ' && mkdir -p /out/bin /out/lib /out/etc /out/root /out/tmp \\',
        ' && cp /bin/busybox /out/bin/busybox && cp -L /lib/ld-musl-*.so.1 /out/lib/ \\',
        " && echo 'root:x:0:0:root:/root:/bin/sh' > /out/etc/passwd && echo 'root:x:0:' > /out/etc/group",
        'FROM scratch',
        'COPY --from=musl /out/ /',
        'RUN ["/bin/busybox", "--install", "-s", "/bin"]',
        '',
      ].join('\n'),
    );
    const r = await sbx(['run', 'shell', '--', 'id', '-u'], { cwd: ws, timeoutMs: 600_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${TEST_USER.uid}\n`);
    const [c] = await containersOf(ws);
    assert.ok(c, 'a sandbox exists');
    // The shell agent's bash is sbx's static one; its files belong to the owner.
    const name = c.Names[0]!.replace(/^\//, '');
    const bash = await sbx([
      'exec',
      name,
      '--',
      'bash',
      '-c',
      'echo "bash $BASH_VERSION" && touch from-bash && ls /lib',
    ]);
    assert.equal(bash.code, 0, bash.stderr);
    assert.match(bash.stdout, /^bash \d+\./m);
    assert.match(bash.stdout, /^ld-musl-/m, 'a musl image');
    assert.equal(statSync(join(ws, 'from-bash')).uid, TEST_USER.uid);
    assert.equal((await sbx(['rm', '-f', '.'], { cwd: ws })).code, 0);

    const claude = await sbx(['run', 'claude', '--', '-p', 'hi'], { cwd: ws, timeoutMs: 300_000 });
    assert.equal(claude.code, 65, claude.stderr);
    assert.match(
      claude.stderr,
      /claude cannot run on the dev container's image .*: claude is installed with npm, which this image lacks \(it has: musl, no package manager, no Node\.js\), and sbx can only add Node\.js and npm with a package manager/,
    );
    assert.deepEqual(await containersOf(ws), []);
  });

  it('refuses an image without /bin/sh, naming it, and creates nothing', async () => {
    const ws = await ownedWorkspace('FROM scratch\nCOPY devcontainer.json /etc/only-file\n');
    const r = await sbx(['run', 'shell', '--', 'true'], { cwd: ws, timeoutMs: 300_000 });
    assert.equal(r.code, 65, r.stderr);
    assert.match(
      r.stderr,
      /The dev container's image sbx\/devcontainer-[^ ]+-project:[0-9a-f]{12} could not be started with \/bin\/sh .*no agent can run there/,
    );
    assert.match(r.stderr, /Hint: Use an image with \/bin\/sh/);
    assert.deepEqual(await containersOf(ws), []);
  });
});
