import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ContainerInfo } from '../../src/engine/containers.js';
import { runtimeOf } from '../../src/sandbox/discovery.js';
import { checkSocketMount, chooseInnerSandbox, chooseRuntime, isGvisor } from '../../src/sandbox/runtime.js';
import type { SbxError } from '../../src/shared/errors.js';
import { LABEL } from '../../src/shared/labels.js';

const engine = { runtimes: ['runc', 'runsc'], podman: false, url: 'unix:///var/run/docker.sock' };

describe('chooseRuntime', () => {
  it('takes --runtime, then SBX_RUNTIME, then the agent config, then the config, else the default', () => {
    const config = { runtime: 'runc', runtimes: { claude: 'runsc' } };
    assert.equal(chooseRuntime('runc', config, 'claude', engine, { SBX_RUNTIME: 'runsc' }), 'runc');
    assert.equal(chooseRuntime(undefined, config, 'shell', engine, { SBX_RUNTIME: 'runsc' }), 'runsc');
    assert.equal(chooseRuntime(undefined, config, 'claude', engine, {}), 'runsc');
    assert.equal(chooseRuntime(undefined, config, 'shell', engine, {}), 'runc');
    assert.equal(chooseRuntime(undefined, {}, 'shell', engine, {}), undefined);
  });

  it('refuses a runtime the engine lacks, saying where it was asked for and how to register it', () => {
    assert.throws(
      () => chooseRuntime(undefined, { runtime: 'kata' }, 'shell', engine, {}),
      (err: SbxError) =>
        err.exitCode === 66 &&
        /no runtime named kata \(asked for by config runtime\); it has: runc, runsc/.test(err.message) &&
        /daemon\.json/.test(err.hint!) &&
        /kill -HUP/.test(err.hint!),
    );
    assert.throws(
      () =>
        chooseRuntime(undefined, {}, 'shell', { ...engine, runtimes: ['runc'] }, { SBX_RUNTIME: 'runsc' }),
      (err: SbxError) => /SBX_RUNTIME/.test(err.message) && /apt-get install runsc/.test(err.hint!),
    );
    assert.throws(
      () => chooseRuntime(undefined, {}, 'shell', engine, { SBX_RUNTIME: 'not valid' }),
      (err: SbxError) => err.exitCode === 2,
    );
  });
});

describe('checkSocketMount', () => {
  const plain = {
    runsc: { path: '/usr/bin/runsc', args: ['--network=host'] },
    runc: { path: 'runc', args: [] },
  };
  it('refuses a socket mount under a gVisor without --host-uds, before anything is made', () => {
    assert.throws(
      () => checkSocketMount('runsc', plain, 'the Docker socket'),
      (err: SbxError) => err.exitCode === 2 && /--host-uds=open/.test(err.hint!),
    );
    // Found by its program too, under another name.
    assert.throws(() => checkSocketMount('gvisor', { gvisor: plain.runsc }, '/run/x.sock'));
  });

  it('lets it through under runc, without a socket, or with --host-uds', () => {
    checkSocketMount('runc', plain, 'the Docker socket');
    checkSocketMount(undefined, plain, 'the Docker socket');
    checkSocketMount('runsc', plain, undefined);
    checkSocketMount('runsc', { runsc: { path: '/usr/bin/runsc', args: ['--host-uds=open'] } }, 'x');
  });
});

describe('the inner guard', () => {
  it('takes --inner-sandbox/--no-inner-sandbox, then the agent config, then the config, else off', () => {
    const config = { innerSandbox: true, innerSandboxes: { codex: false } };
    assert.equal(chooseInnerSandbox(false, config, 'claude'), false);
    assert.equal(chooseInnerSandbox(true, { innerSandbox: false }, 'claude'), true);
    assert.equal(chooseInnerSandbox(undefined, config, 'codex'), false);
    assert.equal(chooseInnerSandbox(undefined, config, 'claude'), true);
    assert.equal(chooseInnerSandbox(undefined, {}, 'claude'), false);
  });

  it('knows gVisor by its name or by the program registered under another name', () => {
    const details = { runc: { path: 'runc', args: [] }, gvisor: { path: '/usr/bin/runsc', args: [] } };
    assert.equal(isGvisor('runsc', {}), true);
    assert.equal(isGvisor('gvisor', details), true);
    assert.equal(isGvisor('runc', details), false);
    assert.equal(isGvisor(undefined, details), false);
  });
});

describe('runtimeOf', () => {
  const info = (runtime: string | undefined, label?: string) =>
    ({
      Config: { Labels: label ? { [LABEL.runtime]: label } : {} },
      HostConfig: runtime === undefined ? {} : { Runtime: runtime },
    }) as unknown as ContainerInfo;
  it('reports the runtime asked for at creation, where Podman says "oci"', () => {
    assert.equal(runtimeOf(info('oci', 'runsc')), 'runsc');
    assert.equal(runtimeOf(info('runsc')), 'runsc');
    assert.equal(runtimeOf(info('oci')), 'runc');
    assert.equal(runtimeOf(info(undefined)), 'runc');
    assert.equal(runtimeOf(info('runc')), 'runc');
  });
});
