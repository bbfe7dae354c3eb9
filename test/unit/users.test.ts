import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { getAgent } from '../../src/agents/registry.js';
import type { ContainerInfo } from '../../src/engine/containers.js';
import { plainRequest, reattachPlan } from '../../src/sandbox/plan.js';
import { createOptions, type SandboxPlan } from '../../src/sandbox/spec.js';
import { SbxError } from '../../src/shared/errors.js';
import { LABEL, ownedBy } from '../../src/shared/labels.js';

describe('a sandbox belongs to the host user who made it', () => {
  it('by dev.sbx.user; one from before that label by its workspace owner; no UIDs: everyone’s', () => {
    assert.equal(ownedBy({ [LABEL.user]: '1000', [LABEL.uid]: '4242' }, '1000'), true);
    assert.equal(ownedBy({ [LABEL.user]: '0', [LABEL.uid]: '1000' }, '1000'), false);
    assert.equal(ownedBy({ [LABEL.uid]: '1000' }, '1000'), true);
    assert.equal(ownedBy({ [LABEL.uid]: '1000' }, '4242'), false);
    assert.equal(ownedBy({}, '1000'), true, 'older than both labels: everyone’s');
    assert.equal(ownedBy({ [LABEL.uid]: '1000' }, ''), true);
  });

  it('creation labels the sandbox with its maker', () => {
    const plan = {
      name: 'sbx-app',
      workspace: '/w',
      agent: getAgent('shell'),
      image: 'sbx/base',
      templateRef: 'base',
      uid: 4242,
      gid: 4242,
      user: '0',
      git: {},
      volumes: [],
      ports: [],
      limits: { cpus: 0, memory: 0, pidsLimit: 0 },
      named: false,
      additions: [],
      labels: {},
      version: '0',
    } as unknown as SandboxPlan;
    assert.equal(createOptions(plan).Labels?.[LABEL.user], '0');
  });

  it("sbx run does not reattach to another user's sandbox of a workspace; root may", () => {
    const info = {
      Id: 'c0ffee',
      Name: '/sbx-app',
      State: { Running: true },
      Config: {
        Image: 'sbx/claude:abc',
        Labels: {
          [LABEL.managed]: 'true',
          [LABEL.workspace]: '/w',
          [LABEL.agent]: 'claude',
          [LABEL.uid]: '1000',
          [LABEL.gid]: '1000',
          [LABEL.user]: '1000',
          [LABEL.credentials]: 'sandbox',
        },
      },
      HostConfig: { Binds: [], PortBindings: {} },
    } as unknown as ContainerInfo;
    const req = plainRequest('/w', getAgent('claude'));
    assert.throws(
      () => reattachPlan(info, req, '4242'),
      (err) =>
        err instanceof SbxError &&
        err.kind === 'conflict' &&
        /another host user \(UID 1000\)/.test(err.message),
    );
    assert.equal(reattachPlan(info, req, '1000').sandbox.name, 'sbx-app');
    assert.equal(reattachPlan(info, req, '0').sandbox.name, 'sbx-app');
  });
});
