import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getAgent } from '../../src/agents/registry.js';
import type { ContainerInfo } from '../../src/engine/containers.js';
import {
  checkAgentInImage,
  creationWarnings,
  plainRequest,
  reattachPlan,
  syncWorkspace,
} from '../../src/sandbox/plan.js';
import { SbxError } from '../../src/shared/errors.js';
import { LABEL } from '../../src/shared/labels.js';

const WS = '/home/ada/app';

/** An existing sandbox container as the engine would describe it. */
function container(
  labels: Record<string, string> = {},
  options: { running?: boolean; binds?: string[]; bindings?: Record<string, unknown> } = {},
): ContainerInfo {
  return {
    Id: 'c0ffee',
    Name: '/sbx-app-12345678',
    State: { Running: options.running ?? true },
    Config: {
      Image: 'sbx/claude:abc',
      Labels: {
        [LABEL.managed]: 'true',
        [LABEL.workspace]: WS,
        [LABEL.agent]: 'claude',
        [LABEL.agents]: 'claude,shell',
        [LABEL.template]: 'claude',
        [LABEL.uid]: '1000',
        [LABEL.gid]: '1000',
        [LABEL.credentials]: 'sandbox',
        ...labels,
      },
    },
    HostConfig: { Binds: options.binds ?? [], PortBindings: options.bindings ?? {} },
  } as unknown as ContainerInfo;
}

const request = (changes: Partial<ReturnType<typeof plainRequest>> = {}) => ({
  ...plainRequest(WS, getAgent('claude')),
  ...changes,
});

const conflict = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (err) => err instanceof SbxError && err.kind === 'conflict' && pattern.test(err.message));

describe('reattachPlan', () => {
  it('serves the plain request: the sandbox as its labels say, started only when stopped', () => {
    const { sandbox, start } = reattachPlan(container(), request());
    assert.equal(start, false);
    assert.deepEqual(
      { ...sandbox },
      {
        id: 'c0ffee',
        name: 'sbx-app-12345678',
        workspace: WS,
        agent: 'claude',
        image: 'sbx/claude:abc',
        uid: 1000,
        gid: 1000,
        created: false,
        credentials: 'sandbox',
        syncVolume: undefined,
        secrets: [],
        warnings: [],
      },
    );
    assert.equal(reattachPlan(container({}, { running: false }), request()).start, true);
  });

  it('refuses a foreign container, another workspace, an agent the image lacks', () => {
    conflict(() => reattachPlan(container({ [LABEL.managed]: 'false' }), request()), /not an sbx sandbox/);
    conflict(
      () => reattachPlan(container({ [LABEL.workspace]: '/elsewhere' }), request()),
      /belongs to the workspace \/elsewhere/,
    );
    conflict(
      () => reattachPlan(container(), request({ agent: getAgent('codex') })),
      /codex is not installed/,
    );
    assert.doesNotThrow(() => reattachPlan(container(), request({ agent: getAgent('shell') })));
  });

  it('refuses what is fixed at creation and missing: volumes, credentials mode, ports', () => {
    const volume = { host: '/data', container: '/data', readOnly: true };
    conflict(() => reattachPlan(container(), request({ volumes: [volume] })), /without the volume \/data/);
    assert.doesNotThrow(() =>
      reattachPlan(container({}, { binds: ['/data:/data:ro'] }), request({ volumes: [volume] })),
    );
    conflict(() => reattachPlan(container(), request({ credentials: 'host' })), /--credentials sandbox/);
    const port = { hostIp: '127.0.0.1', hostPort: 0, containerPort: 3000, protocol: 'tcp' as const };
    conflict(() => reattachPlan(container(), request({ ports: [port] })), /without the port 3000\/tcp/);
    assert.doesNotThrow(() =>
      reattachPlan(container({ [LABEL.ports]: JSON.stringify([port]) }), request({ ports: [port] })),
    );
  });

  it('refuses --inner-sandbox (or --no-inner-sandbox) that the sandbox was not created with', () => {
    conflict(
      () => reattachPlan(container(), request({ innerSandbox: true })),
      /created without the inner guard; --inner-sandbox applies only when a sandbox is created/,
    );
    conflict(
      () => reattachPlan(container({ [LABEL.innerSandbox]: 'true' }), request({ innerSandbox: false })),
      /created with the inner guard; --no-inner-sandbox/,
    );
    assert.throws(
      () => reattachPlan(container(), request({ innerSandbox: true })),
      (err) =>
        err instanceof SbxError &&
        /sbx rm -f sbx-app-12345678; your workspace files stay/.test(err.hint ?? ''),
    );
    assert.doesNotThrow(() =>
      reattachPlan(container({ [LABEL.innerSandbox]: 'true' }), request({ innerSandbox: true })),
    );
    assert.doesNotThrow(() => reattachPlan(container({ [LABEL.innerSandbox]: 'true' }), request()));
    assert.doesNotThrow(() => reattachPlan(container(), request({ innerSandbox: false })));
  });

  it('warns, without refusing, about what applies only when a sandbox is created', () => {
    const base = request();
    const { sandbox } = reattachPlan(
      container({ [LABEL.dockerSocket]: 'true' }),
      request({
        limits: { cpus: 2, pidsLimit: 100 },
        template: 'other',
        sync: true,
        security: { ...base.security, allowHosts: ['example.com'] },
      }),
    );
    const text = sandbox.warnings.join('\n');
    assert.match(text, /Docker socket/);
    assert.match(text, /network policy and hardening stay as created/);
    assert.match(text, /--cpus, --pids-limit did not change it/);
    assert.match(text, /--template other applies only when a sandbox is created/);
    assert.match(text, /--sync applies only when a sandbox is created/);
  });
});

describe('a new sandbox', () => {
  it('needs its agent in the template image', () => {
    conflict(
      () => checkAgentInImage(getAgent('gemini'), 'mine', 'mine:1', ['claude', 'shell']),
      /does not have gemini installed; it has: claude, shell/,
    );
    conflict(() => checkAgentInImage(getAgent('gemini'), 'x', 'x:1', ['']), /not built from an sbx template/);
    assert.doesNotThrow(() => checkAgentInImage(getAgent('shell'), 'x', 'x:1', ['']));
  });

  it('is synced when the engine cannot see the workspace or --sync asks; --no-sync and --branch then refused', () => {
    const url = 'tcp://far:2376';
    assert.equal(syncWorkspace({ workspace: WS }, true, url), false);
    assert.equal(syncWorkspace({ workspace: WS }, false, url), true);
    assert.equal(syncWorkspace({ workspace: WS, sync: true }, true, url), true);
    const usage = (fn: () => unknown, pattern: RegExp) =>
      assert.throws(fn, (e) => e instanceof SbxError && e.kind === 'usage' && pattern.test(e.message));
    usage(() => syncWorkspace({ workspace: WS, sync: false }, false, url), /--no-sync .* cannot see it/);
    const worktree = { path: WS, branch: 'b', repository: '/r', gitDir: '/r/.git', from: undefined };
    usage(() => syncWorkspace({ workspace: WS, worktree }, false, url), /--branch needs an engine/);
  });

  it('warns about a missing git identity, remote paths and ports, and --no-sudo for root', () => {
    const req = request();
    const none = creationWarnings({
      name: 'n',
      req,
      git: { name: 'Ada', email: 'ada@example.test' },
      ports: [],
      remote: undefined,
      ownerUid: 1000,
      rootless: false,
    });
    assert.deepEqual(none, []);
    const all = creationWarnings({
      name: 'n',
      req: {
        ...req,
        volumes: [{ host: '/data', container: '/data', readOnly: false }],
        security: { ...req.security, noSudo: true },
      },
      git: { name: 'Ada' },
      ports: [{ hostIp: '127.0.0.1', hostPort: 1, containerPort: 2, protocol: 'tcp' }],
      remote: 'tcp://far:2376',
      ownerUid: 0,
      rootless: true,
    });
    assert.equal(all.length, 4);
    assert.match(all[0]!, /git has no user\.email/);
    assert.match(all[1]!, /-v mounts its paths \(\/data\)/);
    assert.match(all[2]!, /-p ports are published on its 127\.0\.0\.1/);
    assert.match(all[3]!, /rootless Docker engine/);
    const inner = (ownerUid: number) =>
      creationWarnings({
        name: 'n',
        req,
        git: { name: 'Ada', email: 'ada@example.test' },
        ports: [],
        remote: undefined,
        ownerUid,
        rootless: false,
        innerSandbox: true,
      });
    assert.deepEqual(inner(1000), []);
    assert.match(
      inner(0).join(''),
      /bubblewrap cannot map root .* CAP_SETFCAP.* workspace of a non-root user/,
    );
  });
});
