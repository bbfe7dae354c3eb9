import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getAgent, launchCommand } from '../../src/agents/registry.js';
import { flavourOf } from '../../src/engine/flavour.js';
import { sandboxName } from '../../src/sandbox/identity.js';
import {
  createOptions,
  effectiveLimits,
  execEnv,
  execUser,
  portBindings,
  sandboxOwner,
} from '../../src/sandbox/spec.js';
import { LABEL } from '../../src/shared/labels.js';

const plan = {
  name: 'sbx-app-12345678',
  workspace: '/home/ada/app',
  agent: getAgent('claude'),
  image: 'sbx/claude:abc',
  templateRef: 'claude',
  uid: 1001,
  gid: 1002,
  git: { name: 'Ada', email: 'ada@example.test' },
  volumes: [{ host: '/data', container: '/data', readOnly: true }],
  ports: [
    { hostIp: '127.0.0.1', hostPort: 0, containerPort: 3000, protocol: 'tcp' as const },
    { hostIp: '0.0.0.0', hostPort: 8053, containerPort: 53, protocol: 'udp' as const },
  ],
  limits: { cpus: 1.5, memory: 2 ** 30, pidsLimit: 4096 },
  named: false,
  additions: [
    {
      mounts: [{ Type: 'volume' as const, Source: 'sbx-state-claude', Target: '/home/agent/.claude' }],
      env: ['CLAUDE_CONFIG_DIR=/home/agent/.claude'],
      labels: { [LABEL.credentials]: 'sandbox' },
    },
    {
      binds: ['/home/ada/app/.git/hooks:/home/ada/app/.git/hooks:ro'],
      network: 'sbx-net-sbx-app-12345678',
      aliases: ['sandbox'],
      address: '10.213.4.19',
      host: { CapDrop: ['NET_RAW'] },
    },
  ],
  labels: { 'dev.sbx.test': 'x' },
  version: '0.1.0',
};

describe('createOptions', () => {
  it('mounts the workspace at the same path, labels it, and stores no secrets', () => {
    const options = createOptions(plan);
    assert.equal(options.WorkingDir, '/home/ada/app');
    assert.deepEqual(options.HostConfig?.Binds, [
      '/home/ada/app:/home/ada/app',
      '/home/ada/app/.git/hooks:/home/ada/app/.git/hooks:ro',
      '/data:/data:ro',
    ]);
    assert.equal(options.Labels?.[LABEL.workspace], '/home/ada/app');
    assert.equal(options.Labels?.[LABEL.agent], 'claude');
    assert.equal(options.Labels?.[LABEL.uid], '1001');
    assert.equal(options.Labels?.['dev.sbx.test'], 'x');
    assert.deepEqual(options.Env, [
      'SBX_UID=1001',
      'SBX_GID=1002',
      'SBX_GIT_NAME=Ada',
      'SBX_GIT_EMAIL=ada@example.test',
      'CLAUDE_CONFIG_DIR=/home/agent/.claude',
    ]);
    assert.deepEqual(options.HostConfig?.Mounts, plan.additions[0]!.mounts);
    assert.equal(options.HostConfig?.NetworkMode, 'sbx-net-sbx-app-12345678');
    assert.deepEqual(options.NetworkingConfig, {
      EndpointsConfig: {
        'sbx-net-sbx-app-12345678': { Aliases: ['sandbox'], IPAMConfig: { IPv4Address: '10.213.4.19' } },
      },
    });
    assert.deepEqual(options.HostConfig?.CapDrop, ['NET_RAW']);
    assert.equal(options.Labels?.[LABEL.credentials], 'sandbox');
    assert.equal(options.Labels?.[LABEL.named], undefined);
    assert.equal(createOptions({ ...plan, named: true }).Labels?.[LABEL.named], 'true');
  });

  it('records ports for the forwarder (0: the engine picks) and sets the limits', () => {
    const options = createOptions(plan);
    assert.deepEqual(JSON.parse(options.Labels?.[LABEL.ports] ?? ''), plan.ports);
    assert.equal(options.HostConfig?.PortBindings, undefined, 'the sandbox publishes nothing itself');
    assert.deepEqual(portBindings(plan.ports), {
      '3000/tcp': [{ HostIp: '127.0.0.1', HostPort: '' }],
      '53/udp': [{ HostIp: '0.0.0.0', HostPort: '8053' }],
    });
    assert.equal(options.HostConfig?.NanoCpus, 1.5e9);
    assert.equal(options.HostConfig?.Memory, 2 ** 30);
    assert.equal(options.HostConfig?.PidsLimit, 4096);
    const unlimited = createOptions({ ...plan, limits: { cpus: 0, memory: 0, pidsLimit: 0 } }).HostConfig;
    assert.equal(unlimited?.NanoCpus, undefined);
    assert.equal(unlimited?.Memory, undefined);
    assert.equal(unlimited?.PidsLimit, undefined);
  });
});

describe('effectiveLimits', () => {
  const engine = { cpus: 4, memTotal: 10 * 2 ** 30 };
  it('takes flags, then config, then the defaults (80% of the memory, 4096 processes)', () => {
    assert.deepEqual(effectiveLimits({}, {}, engine), { cpus: 0, memory: 8 * 2 ** 30, pidsLimit: 4096 });
    assert.deepEqual(effectiveLimits({}, { cpus: 2, memory: '1g', pidsLimit: 500 }, engine), {
      cpus: 2,
      memory: 2 ** 30,
      pidsLimit: 500,
    });
    assert.deepEqual(effectiveLimits({ cpus: 1, memory: 0 }, { cpus: 2, memory: '1g' }, engine), {
      cpus: 1,
      memory: 0,
      pidsLimit: 4096,
    });
  });
  it('refuses more CPUs than the engine has', () => {
    assert.throws(() => effectiveLimits({ cpus: 8 }, {}, engine), /more than the engine's 4 CPUs/);
  });
});

describe('execEnv', () => {
  it("forwards only this agent's keys, never the host's proxy settings; user variables win", () => {
    const env = execEnv({
      agent: getAgent('claude'),
      user: execUser(1001, 1002),
      term: 'xterm',
      hostEnv: { ANTHROPIC_API_KEY: 'k1', OPENAI_API_KEY: 'k2', HTTPS_PROXY: 'http://corp:8080' },
      vars: [{ name: 'DISABLE_AUTOUPDATER', value: '0' }],
    });
    assert.ok(env.includes('ANTHROPIC_API_KEY=k1'));
    assert.ok(!env.some((e) => e.startsWith('OPENAI_API_KEY=')));
    assert.ok(env.includes('HOME=/home/agent'));
    assert.ok(!env.some((e) => e.startsWith('HTTPS_PROXY=')), 'the sandbox keeps its own proxy variables');
    assert.ok(env.includes('DISABLE_AUTOUPDATER=0'));
    assert.ok(env.includes('TERM=xterm'));
  });

  it('keeps root as root', () => {
    assert.deepEqual(execUser(0, 0), { user: '0:0', home: '/root', name: 'root' });
  });
});

describe('engine flavours', () => {
  it('are chosen once from what the engine says: Podman makes networks without DNS and may have stale containers', () => {
    const rootlessPodman = flavourOf({ podman: true, rootless: true });
    assert.equal(rootlessPodman.name, 'Podman');
    assert.equal(rootlessPodman.runningMayBeStale, true);
    assert.equal(rootlessPodman.netnsGoesWithLastNetwork, true);
    assert.equal(flavourOf({ podman: true, rootless: false }).netnsGoesWithLastNetwork, false);
    assert.equal(flavourOf({ podman: false, rootless: false }).runningMayBeStale, false);
  });
  it("adapt container options: rootless Podman keeps the user's UID and starts as root; Docker is left as asked", () => {
    const asked = { name: 'x', Image: 'i', HostConfig: { Memory: 1 } };
    assert.deepEqual(flavourOf({ podman: false, rootless: true }).adaptCreate(asked), asked);
    const adapted = flavourOf({ podman: true, rootless: true }).adaptCreate(asked);
    assert.equal(adapted.User, '0:0');
    assert.equal(adapted.HostConfig?.UsernsMode, 'keep-id');
    assert.equal(adapted.HostConfig?.Memory, 1);
    assert.ok(adapted.HostConfig?.Ulimits?.some((u) => u.Name === 'nofile'));
    assert.equal(
      flavourOf({ podman: true, rootless: false }).adaptCreate(asked).HostConfig?.UsernsMode,
      undefined,
    );
  });
});

describe('sandboxOwner', () => {
  const me = { uid: 1000, gid: 1000 };
  it('keeps the IDs on a rootful engine and on rootless Podman (keep-id)', () => {
    assert.deepEqual(sandboxOwner(me, flavourOf({ rootless: false, podman: false }).userMapping, 1000), me);
    assert.deepEqual(sandboxOwner(me, flavourOf({ rootless: true, podman: true }).userMapping, 1000), me);
  });
  it("is root inside a rootless Docker engine when the workspace is the engine user's", () => {
    assert.deepEqual(sandboxOwner(me, flavourOf({ rootless: true, podman: false }).userMapping, 1000), {
      uid: 0,
      gid: 0,
    });
    assert.deepEqual(sandboxOwner(me, flavourOf({ rootless: true, podman: false }).userMapping, 1001), me);
  });
});

describe('launchCommand', () => {
  it('appends arguments to the agent, but runs them as the command for the shell', () => {
    assert.deepEqual(launchCommand(getAgent('claude'), ['-p', 'hi']), [
      'claude',
      '--dangerously-skip-permissions',
      '-p',
      'hi',
    ]);
    assert.deepEqual(launchCommand(getAgent('gemini'), []), ['gemini', '--yolo']);
    assert.deepEqual(launchCommand(getAgent('shell'), ['cat']), ['cat']);
    assert.deepEqual(launchCommand(getAgent('shell'), []), ['bash', '-l']);
  });
});

describe('sandboxName', () => {
  it('is readable, stable and distinct per path', () => {
    assert.match(sandboxName('/home/ada/My App'), /^sbx-my-app-[0-9a-f]{8}$/);
    assert.equal(sandboxName('/a/app'), sandboxName('/a/app'));
    assert.notEqual(sandboxName('/a/app'), sandboxName('/b/app'));
    assert.match(sandboxName('/'), /^sbx-root-/);
  });
});
