import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkSocketMount, chooseRuntime } from '../../src/sandbox/runtime.js';
import type { SbxError } from '../../src/shared/errors.js';

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
