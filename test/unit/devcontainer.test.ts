import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { composeNote, devcontainerAddition, devcontainerFor } from '../../src/sandbox/devcontainer.js';
import type { SbxError } from '../../src/shared/errors.js';
import {
  devcontainerRepository,
  findDevcontainer,
  loadDevcontainer,
  parseFeatureRef,
  parseJsonc,
  substitute,
  wideningRunArgs,
} from '../../src/templates/devcontainer.js';
import { layerDockerfile, planDevcontainer } from '../../src/templates/devcontainer-build.js';
import {
  aptPackages,
  type ImageFacts,
  installStep,
  missingTools,
  PACKAGE_NAMES,
  parseProbe,
  refusal,
} from '../../src/templates/foreign-image.js';
import { BUILTIN_DIR } from '../../src/templates/template.js';

const folder = (files: Record<string, string>) => {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sbx-dc-')));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
};

const ctx = (ws: string) => ({
  localEnv: { HOME_TOOL: 'from-host' },
  localWorkspaceFolder: ws,
  containerWorkspaceFolder: ws,
});

const load = (ws: string, chosen?: string) => loadDevcontainer(findDevcontainer(ws, chosen)!, ctx(ws));

const throws = (fn: () => unknown, kind: string, message: RegExp) =>
  assert.throws(fn, (err: SbxError) => {
    assert.equal(err.kind, kind);
    assert.match(err.message, message);
    return true;
  });

describe('findDevcontainer', () => {
  it('finds .devcontainer/devcontainer.json first, then .devcontainer.json, else none', () => {
    const both = folder({ '.devcontainer/devcontainer.json': '{}', '.devcontainer.json': '{"a":1}' });
    assert.equal(findDevcontainer(both)?.path, join(both, '.devcontainer/devcontainer.json'));
    const root = folder({ '.devcontainer.json': '{"a":1}' });
    assert.equal(findDevcontainer(root)?.text, '{"a":1}');
    assert.equal(findDevcontainer(folder({ 'README.md': '' })), undefined);
  });

  it('takes --devcontainer as a file or its folder, and names a missing one', () => {
    const ws = folder({ '.devcontainer/go/devcontainer.json': '{}' });
    assert.equal(
      findDevcontainer(ws, '.devcontainer/go')?.path,
      join(ws, '.devcontainer/go/devcontainer.json'),
    );
    throws(
      () => findDevcontainer(ws, '.devcontainer/rust/devcontainer.json'),
      'notFound',
      /No dev container at/,
    );
  });
});

describe('parseJsonc', () => {
  it('reads comments and trailing commas', () => {
    assert.deepEqual(parseJsonc('// c\n{ /* x */ "a": [1, 2,], "b": {"c": true,}, }', 'f'), {
      a: [1, 2],
      b: { c: true },
    });
  });

  it('names the line and column of malformed JSONC, as a usage error', () => {
    throws(
      () => parseJsonc('{\n  "a": 1\n  "b": 2\n}', '/x/devcontainer.json'),
      'usage',
      /^\/x\/devcontainer\.json:3:3: CommaExpected/,
    );
    throws(() => parseJsonc('[1]', 'f'), 'usage', /does not hold a JSON object/);
  });
});

describe('substitute', () => {
  // devcontainer.json's variables look like template placeholders: built by v().
  const v = (name: string) => ['$', '{', name, '}'].join('');
  it('replaces localEnv (with defaults), the workspace folders and containerEnv; leaves unknown ones', () => {
    const c = ctx('/src/app');
    assert.equal(
      substitute(`${v('localEnv:HOME_TOOL')}-${v('localEnv:NOPE')}-${v('localEnv:NOPE:dflt')}`, c),
      'from-host--dflt',
    );
    assert.equal(
      substitute(`${v('containerWorkspaceFolder')}/bin:${v('localWorkspaceFolderBasename')}`, c),
      '/src/app/bin:app',
    );
    assert.equal(substitute(`${v('containerEnv:PATH')}:/x`, c, { PATH: '/usr/bin' }), '/usr/bin:/x');
    assert.equal(substitute(v('devcontainerId'), c), v('devcontainerId'));
  });
});

describe('loadDevcontainer', () => {
  it('reduces a devcontainer.json to what sbx honours, with notes on the rest', () => {
    const ws = folder({
      '.devcontainer/Dockerfile': 'FROM debian:trixie-slim\n',
      '.devcontainer/feat/install.sh': 'echo\n',
      '.devcontainer/feat/devcontainer-feature.json':
        '{"options":{"greeting":{"default":"hi"},"other-opt":{"default":1}}}',
      '.devcontainer/devcontainer.json': `{
        "build": { "dockerfile": "Dockerfile", "context": "..", "args": { "V": "\${localEnv:HOME_TOOL}" }, "target": "dev" },
        "features": { "./feat": { "greeting": "hola" }, "ghcr.io/devcontainers/features/go:1": { "version": "1.22" } },
        "containerEnv": { "A": "\${containerWorkspaceFolder}" },
        "remoteEnv": { "PATH": "\${containerEnv:A}/bin" },
        "onCreateCommand": "make deps",
        "postCreateCommand": { "one": "echo 1", "two": ["echo", "2"] },
        "postStartCommand": ["run", "me"],
        "forwardPorts": [3000, "8080"],
        "appPort": 3000,
        "runArgs": ["--privileged"], "privileged": true, "capAdd": ["SYS_ADMIN"], "securityOpt": ["seccomp=unconfined"],
        "mounts": ["source=\${localWorkspaceFolder}/data,target=/data,type=bind,readonly", { "source": "cache", "target": "/cache", "type": "volume" }, "type=tmpfs,target=/tmp"],
        "remoteUser": "vscode",
        "customizations": {},
        "somethingNew": 1,
      }`,
    });
    const dc = load(ws);
    assert.equal(
      dc.source.kind === 'build' && dc.source.dockerfileText.toString(),
      readFileSync(join(ws, '.devcontainer/Dockerfile'), 'utf8'),
      'the Dockerfile as read, which the build sends',
    );
    assert.deepEqual(
      { ...dc.source, dockerfileText: undefined },
      {
        kind: 'build',
        dockerfile: join(ws, '.devcontainer/Dockerfile'),
        dockerfileText: undefined,
        context: ws,
        args: { V: 'from-host' },
        target: 'dev',
      },
    );
    assert.deepEqual(dc.features, [
      { id: './feat', dir: join(ws, '.devcontainer/feat'), env: { GREETING: 'hola', OTHER_OPT: '1' } },
      {
        id: 'ghcr.io/devcontainers/features/go:1',
        dir: '',
        env: {},
        ref: { registry: 'ghcr.io', repository: 'devcontainers/features/go', reference: '1' },
        options: { version: '1.22' },
      },
    ]);
    assert.deepEqual(dc.env, { A: ws, PATH: `${ws}/bin` });
    assert.deepEqual(dc.createCommands, [
      ['/bin/sh', '-c', 'make deps'],
      ['/bin/sh', '-c', 'echo 1'],
      ['echo', '2'],
    ]);
    assert.deepEqual(dc.startCommands, [['run', 'me']]);
    assert.deepEqual(dc.ports, [3000, 8080]);
    const notes = dc.notes.join('\n');
    assert.deepEqual(dc.mounts, [
      { type: 'bind', source: `${ws}/data`, target: '/data', readOnly: true },
      { type: 'volume', source: 'cache', target: '/cache', readOnly: false },
    ]);
    assert.match(notes, /^runArgs \["--privileged"\]: not applied/m);
    assert.match(notes, /^localEnv: passes the host's HOME_TOOL into the sandbox$/m);
    assert.doesNotMatch(notes, /mounts: binds/, 'a bind from inside the workspace is not worth a warning');
    assert.match(notes, /^mounts: "type=tmpfs,target=\/tmp" not applied/m);
    for (const key of ['runArgs', 'privileged', 'capAdd', 'securityOpt', 'remoteUser'])
      assert.match(notes, new RegExp(`^${key}( \\S+)?: not applied|^${key}: the agent runs`, 'm'), key);
    assert.match(notes, /somethingNew: unknown to sbx, ignored/);
    assert.doesNotMatch(notes, /customizations/);
  });

  it('takes an image instead of a build', () => {
    const dc = load(folder({ '.devcontainer.json': '{ "image": "debian:trixie-slim" }' }));
    assert.deepEqual(dc.source, { kind: 'image', ref: 'debian:trixie-slim' });
  });

  it('refuses what it cannot build, naming it', () => {
    throws(
      () => load(folder({ '.devcontainer.json': '{ "name": "x" }' })),
      'usage',
      /neither an image nor a build/,
    );
    throws(
      () => load(folder({ '.devcontainer.json': '{ "build": { "dockerfile": "Nope" } }' })),
      'notFound',
      /Dockerfile .*Nope does not exist/,
    );
    throws(
      () => load(folder({ '.devcontainer.json': '{ "dockerComposeFile": "c.yml", "service": "app" }' })),
      'notFound',
      /compose file .*c\.yml does not exist/,
    );
    throws(
      () => load(folder({ '.devcontainer.json': '{ "image": "x:1", "features": { "./missing": {} } }' })),
      'notFound',
      /feature \.\/missing has no install\.sh/,
    );
    throws(
      () => load(folder({ '.devcontainer.json': '{ "image": "x:1", "forwardPorts": ["db:5432"] }' })),
      'usage',
      /forwardPorts has "db:5432"/,
    );
  });
});

describe('dockerComposeFile', () => {
  it('builds the named service (its build, args, environment); names the services it does not start', () => {
    const ws = folder({
      '.devcontainer/devcontainer.json':
        '{ "dockerComposeFile": ["compose.yml", "compose.extra.yml"], "service": "app", "workspaceFolder": "/workspaces/x", "containerEnv": { "B": "dc" } }',
      '.devcontainer/compose.yml': `services:
  app:
    build:
      context: ..
      dockerfile: .devcontainer/Dockerfile
      args: [ "V=\${HOME_TOOL}", "W=\${NOPE:-dflt}" ]
    environment:
      A: one
      B: compose
    ports: [ "8080:8080" ]
    privileged: true
  db:
    image: postgres:16
`,
      '.devcontainer/compose.extra.yml':
        'services:\n  app:\n    network_mode: host\n  cache:\n    image: redis\n',
      '.devcontainer/Dockerfile': 'FROM debian:trixie-slim\n',
    });
    const dc = load(ws);
    assert.deepEqual(
      { ...dc.source, dockerfileText: undefined },
      {
        kind: 'build',
        dockerfile: join(ws, '.devcontainer/Dockerfile'),
        dockerfileText: undefined,
        context: ws,
        args: { V: 'from-host', W: 'dflt' },
      },
    );
    assert.deepEqual(dc.env, { A: 'one', B: 'dc' }, 'containerEnv wins over the service environment');
    const notes = dc.notes.join('\n');
    assert.match(notes, /service app: ports, privileged, network_mode not applied/);
    // The others start in the sandbox's own engine (--docker), and are said not to start without one.
    assert.deepEqual(dc.compose, {
      files: [join(ws, '.devcontainer/compose.yml'), join(ws, '.devcontainer/compose.extra.yml')],
      services: ['db', 'cache'],
    });
    assert.match(
      composeNote(dc, false).join(''),
      /the other services \(db, cache\) are not started: .*--docker/,
    );
    assert.deepEqual(composeNote(dc, true), []);
    const labels = (docker: boolean) => devcontainerAddition(dc, [], docker).addition.labels ?? {};
    assert.equal(labels(true)['dev.sbx.devcontainer.services'], JSON.stringify(dc.compose));
    assert.equal(labels(false)['dev.sbx.devcontainer.services'], undefined);
    assert.deepEqual(dc.widening, ['service app: privileged: true', 'service app: network_mode: host']);
    throws(
      () =>
        load(
          folder({
            '.devcontainer.json': '{ "dockerComposeFile": "c.yml", "service": "web" }',
            'c.yml': 'services:\n  app:\n    image: debian:trixie-slim\n',
          }),
        ),
      'usage',
      /no service "web"/,
    );
    const image = load(
      folder({
        '.devcontainer.json': '{ "dockerComposeFile": "c.yml", "service": "app" }',
        'c.yml': 'services:\n  app:\n    image: debian:trixie-slim\n    environment: [ "X=1" ]\n',
      }),
    );
    assert.deepEqual(image.source, { kind: 'image', ref: 'debian:trixie-slim' });
    assert.deepEqual(image.env, { X: '1' });
    assert.equal(image.compose, undefined, 'no other service: nothing to start');
    const two = 'services:\n  app:\n    image: a\n  db:\n    image: b\n  cache:\n    image: c\n';
    const only = load(
      folder({
        '.devcontainer.json':
          '{ "dockerComposeFile": "c.yml", "service": "app", "runServices": ["app", "db"] }',
        'c.yml': two,
      }),
    );
    assert.deepEqual(only.compose?.services, ['db'], 'runServices chooses which start');
    throws(
      () =>
        load(
          folder({
            '.devcontainer.json':
              '{ "dockerComposeFile": "c.yml", "service": "app", "runServices": ["dbb"] }',
            'c.yml': two,
          }),
        ),
      'usage',
      /runServices names dbb, which the compose files do not have/,
    );
  });
});

describe('parseFeatureRef', () => {
  it('reads registry, repository and tag or digest; refuses what is not a registry reference', () => {
    assert.deepEqual(parseFeatureRef('ghcr.io/devcontainers/features/node:1'), {
      registry: 'ghcr.io',
      repository: 'devcontainers/features/node',
      reference: '1',
    });
    assert.deepEqual(parseFeatureRef('localhost:5000/features/hello'), {
      registry: 'localhost:5000',
      repository: 'features/hello',
      reference: 'latest',
    });
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.equal(parseFeatureRef(`ghcr.io/x/y@${digest}`)?.reference, digest);
    assert.equal(parseFeatureRef('node'), undefined, 'a short id names no registry');
    assert.equal(parseFeatureRef('devcontainers/features/node:1'), undefined);
    throws(
      () => load(folder({ '.devcontainer.json': '{ "image": "x:1", "features": { "go": {} } }' })),
      'usage',
      /feature go is neither a local folder .* nor a registry reference/,
    );
  });
});

describe('strict mode', () => {
  it('classifies the runArgs that widen the boundary', () => {
    assert.deepEqual(
      wideningRunArgs([
        '--init',
        '--privileged',
        '--network=host',
        '--network',
        'bridge',
        '--pid',
        'host',
        '-v',
        '/var/run/docker.sock:/var/run/docker.sock',
        '--cap-add=SYS_PTRACE',
        '--name',
        'x',
      ]),
      [
        '--privileged',
        '--network=host',
        '--pid host',
        '-v /var/run/docker.sock:/var/run/docker.sock',
        '--cap-add=SYS_PTRACE',
      ],
    );
    assert.deepEqual(
      wideningRunArgs(['--init', '--hostname', 'dev', '--network=bridge', '--privileged=false']),
      [],
    );
  });

  it('refuses, listing them, what would widen the boundary; warns without strict', () => {
    const ws = folder({
      '.devcontainer.json': `{
        "image": "debian:trixie-slim",
        "runArgs": ["--init", "--network=host"], "privileged": true, "capAdd": ["SYS_ADMIN"], "securityOpt": ["seccomp=unconfined"],
        "initializeCommand": "echo host",
        "containerEnv": { "T": "\${localEnv:HOME_TOOL}" },
        "mounts": ["source=/etc,target=/host-etc,type=bind"],
      }`,
    });
    const req = { workspace: ws, template: undefined };
    const dc = devcontainerFor(req, {});
    assert.ok(dc, 'auto builds it, without them');
    assert.equal(dc.widening.length, 7, dc.widening.join('\n'));
    let message = '';
    throws(
      () => {
        try {
          devcontainerFor(req, { devcontainer: 'strict' });
        } catch (err) {
          message = (err as Error).message;
          throw err;
        }
      },
      'usage',
      /strict mode \(config devcontainer=strict\) refuses; nothing was created/,
    );
    for (const listed of [
      /^ {2}- runArgs \["--network=host"\]$/m,
      /^ {2}- privileged: true$/m,
      /^ {2}- capAdd \["SYS_ADMIN"\]$/m,
      /^ {2}- securityOpt \["seccomp=unconfined"\]$/m,
      /^ {2}- initializeCommand/m,
      /^ {2}- mounts: binds \/etc, outside the workspace$/m,
      /^ {2}- \$\{localEnv:…\}: reads the host's HOME_TOOL$/m,
    ])
      assert.match(message, listed);
    const clean = folder({
      '.devcontainer.json': '{ "image": "debian:trixie-slim", "runArgs": ["--init"] }',
    });
    assert.ok(devcontainerFor({ workspace: clean, template: undefined }, { devcontainer: 'strict' }));
  });
});

describe('devcontainerFor', () => {
  const ws = folder({ '.devcontainer.json': '{ "image": "debian:trixie-slim" }' });
  it('is used by default, not with --template or config devcontainer=never', () => {
    assert.ok(devcontainerFor({ workspace: ws, template: undefined }, {}));
    assert.equal(devcontainerFor({ workspace: ws, template: 'base' }, {}), undefined);
    assert.equal(
      devcontainerFor({ workspace: ws, template: undefined }, { devcontainer: 'never' }),
      undefined,
    );
    assert.ok(
      devcontainerFor(
        { workspace: ws, template: undefined, devcontainer: '.devcontainer.json' },
        { devcontainer: 'never' },
      ),
    );
    throws(
      () => devcontainerFor({ workspace: ws, template: 'base', devcontainer: '.devcontainer.json' }, {}),
      'usage',
      /both/,
    );
  });
});

describe('devcontainerAddition', () => {
  it('publishes forwardPorts on 127.0.0.1 unless -p already maps them, and sets the env', () => {
    const dc = load(
      folder({
        '.devcontainer.json':
          '{ "image": "x:1", "forwardPorts": [3000, 4000], "containerEnv": { "A": "1" } }',
      }),
    );
    const { addition, ports } = devcontainerAddition(
      dc,
      [{ hostIp: '127.0.0.1', hostPort: 0, containerPort: 4000, protocol: 'tcp' }],
      false,
    );
    assert.deepEqual(ports, [
      { hostIp: '127.0.0.1', hostPort: 0, containerPort: 4000, protocol: 'tcp' },
      { hostIp: '127.0.0.1', hostPort: 3000, containerPort: 3000, protocol: 'tcp' },
    ]);
    assert.deepEqual(addition.env, ['A=1']);
  });
});

describe('the image of a dev container', () => {
  const files = {
    '.devcontainer/Dockerfile': 'FROM debian:trixie-slim\n',
    '.devcontainer/devcontainer.json': '{ "build": { "dockerfile": "Dockerfile" } }',
  };

  it('is tagged by a hash that changes with devcontainer.json, its Dockerfile and the agent', () => {
    const ws = folder(files);
    const a = planDevcontainer(load(ws), ws, 'base', []);
    assert.equal(planDevcontainer(load(ws), ws, 'base', []).tag, a.tag, 'stable');
    assert.match(
      a.tag,
      new RegExp(`^${devcontainerRepository(ws, findDevcontainer(ws)!)}:base-[0-9a-f]{12}$`),
    );
    assert.notEqual(planDevcontainer(load(ws), ws, 'claude', []).tag, a.tag);
    writeFileSync(join(ws, '.devcontainer/Dockerfile'), 'FROM debian:trixie-slim\nRUN true\n');
    const b = planDevcontainer(load(ws), ws, 'base', []);
    assert.notEqual(b.hash, a.hash);
    writeFileSync(
      join(ws, '.devcontainer/devcontainer.json'),
      '{ "build": { "dockerfile": "Dockerfile" }, "containerEnv": {"A": "1"} }',
    );
    assert.notEqual(planDevcontainer(load(ws), ws, 'base', []).hash, b.hash);
  });

  it("layers sbx's base and the agent's steps on the project image (a Debian-like one: with apt-get)", () => {
    const ws = folder(files);
    const text = layerDockerfile('sbx/devcontainer-x-project:abc', load(ws), 'claude');
    assert.match(text, /^FROM sbx\/devcontainer-x-project:abc\nUSER root\n/);
    assert.doesNotMatch(text, /sbx-static|dev\.sbx\.missing/);
    assert.equal(text.match(/^FROM /gm)?.length, 1);
    assert.match(text, /apt-get update[\s\S]*sudo tini tmux/);
    assert.match(text, /useradd --create-home \$\(getent passwd 1000/);
    assert.match(text, /npm install -g @anthropic-ai\/claude-code/);
    assert.match(text, /ENTRYPOINT \["\/usr\/local\/bin\/sbx-init"\]/);
    const withUsers = layerDockerfile('p:1', { ...load(ws), imageUsers: ['dev'] }, 'base', 'vscode:vscode');
    assert.match(
      withUsers,
      /^RUN sh \/usr\/local\/lib\/sbx\/devcontainer-path 'dev' 'vscode' '1000'$/m,
      "the image's users, whose home tools go on the agent's PATH",
    );
    const dc = load(ws);
    const withEnv = layerDockerfile(
      'p:1',
      { ...dc, features: [{ id: './f', dir: '/x', env: {}, containerEnv: { PATH: `/opt/f/bin:\${PATH}` } }] },
      'base',
    );
    assert.match(
      withEnv,
      /\.\/install\.sh && rm -rf \/tmp\/sbx-features\/0\nENV PATH="\/opt\/f\/bin:\$\{PATH\}"\n/,
      "a feature's containerEnv is set after its install",
    );
  });
});

// The Alpine and Fedora paths cannot be run here (no registry to get those images from): their
// generated layers are checked as text; the e2e suite runs the Debian and no-package-manager paths.
describe('images sbx does not control', () => {
  const ws = folder({ '.devcontainer.json': '{ "image": "x:1" }' });
  const init = ['id', 'chown', 'mkdir', 'ln', 'rm', 'touch', 'sed', 'grep', 'dirname', 'find', 'sleep'];
  const facts = (over: Partial<ImageFacts>): ImageFacts => ({
    manager: undefined,
    libc: 'musl',
    has: init,
    node: undefined,
    ...over,
  });
  const steps = (agent: string) => readFileSync(join(BUILTIN_DIR, agent, 'Dockerfile'), 'utf8');

  it('reads the probe of an image', () => {
    assert.deepEqual(parseProbe('manager=apk\nlibc=musl\nhas=sh\nhas=npm\nnode=v22.1.0\nprobe=done\n'), {
      manager: 'apk',
      libc: 'musl',
      has: ['sh', 'npm'],
      node: 'v22.1.0',
    });
    assert.deepEqual(parseProbe('libc=glibc\nprobe=done'), {
      manager: undefined,
      libc: 'glibc',
      has: [],
      node: undefined,
    });
    assert.equal(parseProbe('sh: 1: syntax error'), undefined, 'a probe that did not finish');
  });

  it("names every base package for apk and dnf (one table), taken from templates/base's apt step", () => {
    const apt = aptPackages(readFileSync(join(BUILTIN_DIR, 'base', 'Dockerfile'), 'utf8'));
    assert.ok(apt.includes('tini') && apt.includes('nodejs') && apt.includes('xz-utils'), apt.join(' '));
    for (const p of apt) assert.ok(p in PACKAGE_NAMES, `${p} has apk and dnf names`);
    assert.throws(() => installStep('apk', ['made-up']), /no apk name for the base packages made-up/);
  });

  it('installs them with apk on Alpine-like images, with the C++ runtime and shadow', () => {
    const text = layerDockerfile('p:1', load(ws), 'claude', '', facts({ manager: 'apk', has: [] }));
    const [stage, final] = text.split(/\n(?=FROM p:1\n)/);
    assert.match(stage!, /^FROM debian:trixie-slim AS sbx-static\n/, "sbx's static pieces come from Debian");
    assert.match(final!, /^FROM p:1\nUSER 0:0\n/);
    assert.doesNotMatch(final!, /apt-get/);
    assert.match(
      final!,
      /RUN apk add --no-cache [^\n]*\bopenssh-client\b[^\n]*\bxz\b[^\n]*\bshadow\b[^\n]*libstdc\+\+/,
    );
    assert.match(final!, /&& update-ca-certificates\n/);
    assert.match(final!, /COPY --from=sbx-static \/usr\/bin\/tini-static \/usr\/local\/lib\/sbx\/tini/);
    assert.match(final!, /useradd --create-home/);
    assert.match(
      final!,
      /^RUN npm install -g undici/m,
      'Node.js comes from apk: undici is installed as on Debian',
    );
    assert.match(final!, /npm install -g @anthropic-ai\/claude-code/);
    assert.match(final!, /ENTRYPOINT \["\/usr\/local\/bin\/sbx-init"\]/);
    assert.equal(refusal('claude', steps('claude'), facts({ manager: 'apk', has: [] })), undefined);
  });

  it('installs them with dnf on Fedora-like images, with its trust store behind update-ca-certificates', () => {
    for (const manager of ['dnf', 'microdnf', 'yum'] as const) {
      const text = layerDockerfile('p:1', load(ws), 'base', '', facts({ manager, libc: 'glibc' }));
      assert.match(
        text,
        new RegExp(`RUN ${manager} install -y --setopt=install_weak_deps=0 [^\\n]*openssh-clients procps-ng`),
      );
      assert.doesNotMatch(text, new RegExp(`${manager} install[^\\n]* tini\\b`), "tini is sbx's static one");
      assert.match(text, /exec update-ca-trust/);
      assert.equal(missingTools(facts({ manager })).length, 0);
    }
  });

  it('without a package manager, brings only its static pieces and names what is missing', () => {
    const none = facts({ has: [...init, 'git'] });
    const text = layerDockerfile('p:1', load(ws), 'base', '', none);
    assert.doesNotMatch(text.split('\nFROM p:1\n')[1]!, /apt-get|apk add|dnf install/);
    assert.match(
      text,
      /ln -s \/usr\/local\/lib\/sbx\/bash \/bin\/bash/,
      'bash only where the image has none',
    );
    assert.match(
      text,
      /echo "agent:x:\$uid:\$gid::\/home\/agent:\/bin\/bash" >> \/etc\/passwd/,
      'no useradd: /etc/passwd',
    );
    assert.match(text, /^RUN if command -v npm >\/dev\/null 2>&1; then npm install -g undici/m);
    assert.match(text, /^LABEL dev\.sbx\.missing="sudo,tmux,curl,jq,node,npm"$/m);
  });

  it('refuses an agent the image cannot install, saying why; the shell runs where sbx-init can', () => {
    const none = facts({});
    assert.equal(refusal('shell', '', none), undefined);
    assert.match(
      refusal('claude', steps('claude'), none)!,
      /^claude is installed with npm, which this image lacks \(it has: musl, no package manager, no Node\.js\), and sbx can only add Node\.js and npm with a package manager/,
    );
    assert.equal(
      refusal('claude', steps('claude'), facts({ has: [...init, 'npm'], node: 'v22.0.0' })),
      undefined,
    );
    assert.match(
      refusal('kiro', steps('kiro'), facts({ libc: 'glibc' }))!,
      /^kiro is installed with curl.*\(it has: glibc,/,
    );
    assert.match(
      refusal('shell', '', facts({ has: ['id'] }))!,
      /^sbx's start-up script needs chown, mkdir, .*which this image lacks/,
    );
  });
});

describe('a dev container stays in the workspace (symlinks resolved)', () => {
  const outside = folder({ 'secrets.json': '{}', Dockerfile: 'FROM scratch\n', 'feat/install.sh': '' });
  const dc = (json: object, more: Record<string, string> = {}) =>
    folder({ '.devcontainer/devcontainer.json': JSON.stringify(json), ...more });

  it('refuses a build context or a Dockerfile outside, by path or through a symlink', async () => {
    const { symlinkSync } = await import('node:fs');
    const byPath = dc(
      { build: { dockerfile: 'Dockerfile', context: outside } },
      { '.devcontainer/Dockerfile': 'FROM scratch\n' },
    );
    throws(() => load(byPath), 'usage', /build context .* is outside the workspace/);
    const linked = dc(
      { build: { dockerfile: 'Dockerfile', context: '../ctx' } },
      { '.devcontainer/Dockerfile': 'FROM scratch\n' },
    );
    symlinkSync(outside, join(linked, 'ctx'));
    throws(() => load(linked), 'usage', /build context .* is outside the workspace/);
    const file = dc({ build: { dockerfile: `${outside}/Dockerfile` } });
    throws(() => load(file), 'usage', /Dockerfile .* is outside the workspace/);
    const fileLink = dc({ build: { dockerfile: 'Dockerfile' } });
    symlinkSync(join(outside, 'Dockerfile'), join(fileLink, '.devcontainer/Dockerfile'));
    throws(() => load(fileLink), 'usage', /Dockerfile .* is a symlink/);
  });

  it('refuses a local feature, a compose file or a devcontainer.json folder outside', async () => {
    const { symlinkSync } = await import('node:fs');
    const feature = dc({ image: 'debian', features: { [`../../../..${outside}/feat`]: {} } });
    throws(() => load(feature), 'usage', /feature .* is outside the workspace/);
    const compose = dc({ dockerComposeFile: `${outside}/compose.yml`, service: 'app' });
    writeFileSync(join(outside, 'compose.yml'), 'services:\n  app:\n    image: debian\n');
    throws(() => load(compose), 'usage', /compose file .* is outside the workspace/);
    const linkedFolder = folder({ 'README.md': '' });
    mkdirSync(join(outside, 'dc'), { recursive: true });
    writeFileSync(join(outside, 'dc', 'devcontainer.json'), '{"image": "debian"}');
    symlinkSync(join(outside, 'dc'), join(linkedFolder, '.devcontainer'));
    throws(() => findDevcontainer(linkedFolder), 'usage', /outside the workspace/);
  });

  it("records the files it was read from, hashed as read, for the user's approval", () => {
    const ws = dc(
      { build: { dockerfile: 'Dockerfile' } },
      { '.devcontainer/Dockerfile': 'FROM scratch\n', '.devcontainer/.dockerignore': 'x\n' },
    );
    assert.deepEqual(
      load(ws).inputs.map((i) => i.path),
      [join(ws, '.devcontainer/Dockerfile'), join(ws, '.devcontainer/.dockerignore')],
    );
  });
});
