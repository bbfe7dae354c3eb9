import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { resolveEndpoint } from '../../src/engine/connection.js';
import { SbxError } from '../../src/shared/errors.js';

/** A Docker CLI config folder with contexts, as `docker context create` leaves it. */
function dockerConfig(contexts: Record<string, string>, current?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-docker-'));
  for (const [name, host] of Object.entries(contexts)) {
    const id = createHash('sha256').update(name).digest('hex');
    mkdirSync(join(dir, 'contexts', 'meta', id), { recursive: true });
    writeFileSync(
      join(dir, 'contexts', 'meta', id, 'meta.json'),
      JSON.stringify({ Name: name, Endpoints: { docker: { Host: host } } }),
    );
  }
  if (current) writeFileSync(join(dir, 'config.json'), JSON.stringify({ currentContext: current }));
  return dir;
}

describe('engine selection order', () => {
  const config = dockerConfig({ far: 'tcp://far.example:2375', near: 'unix:///tmp/near.sock' }, 'far');

  it('--host, then the config, then DOCKER_HOST, then DOCKER_CONTEXT, then the current context, then sockets', () => {
    const env = { DOCKER_CONFIG: config, DOCKER_HOST: 'unix:///tmp/env.sock', DOCKER_CONTEXT: 'near' };
    assert.equal(resolveEndpoint(env, { host: 'unix:///tmp/flag.sock', from: '--host' }).reason, '--host');
    const byContext = resolveEndpoint(env, { context: 'near', from: 'config engine.context' });
    assert.equal(byContext.options.socketPath, '/tmp/near.sock');
    assert.match(byContext.reason, /^config engine\.context: context near$/);
    assert.equal(resolveEndpoint(env, undefined).reason, 'DOCKER_HOST');
    assert.equal(resolveEndpoint({ ...env, DOCKER_HOST: '' }, undefined).url, 'unix:///tmp/near.sock');
    const current = resolveEndpoint({ DOCKER_CONFIG: config }, undefined);
    assert.equal(current.url, 'tcp://far.example:2375');
    assert.match(current.reason, /current context/);
    const none = resolveEndpoint(
      { DOCKER_CONFIG: dockerConfig({}), XDG_RUNTIME_DIR: '/nonexistent' },
      undefined,
    );
    assert.ok(none.options.socketPath);
    assert.equal(
      resolveEndpoint({ DOCKER_CONFIG: config }, { context: 'default', from: '--context' }).options
        .socketPath !== undefined,
      true,
    );
  });

  it('tcp with TLS reads DOCKER_CERT_PATH; ssh:// goes through an agent; bad input is a usage error', () => {
    const certs = mkdtempSync(join(tmpdir(), 'sbx-certs-'));
    for (const f of ['ca.pem', 'cert.pem', 'key.pem']) writeFileSync(join(certs, f), 'x');
    const tls = resolveEndpoint(
      { DOCKER_HOST: 'tcp://h:1234', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: certs },
      undefined,
    );
    assert.equal(tls.options.protocol, 'https');
    assert.equal(tls.options.port, 1234);
    assert.ok(tls.options.agent);
    assert.deepEqual(resolveEndpoint({ DOCKER_HOST: 'tcp://127.0.0.1:2375' }, undefined).options, {
      host: '127.0.0.1',
      port: 2375,
      protocol: 'http',
    });
    assert.deepEqual(resolveEndpoint({ DOCKER_HOST: 'unix:///tmp/x.sock' }, undefined).options, {
      socketPath: '/tmp/x.sock',
    });
    assert.ok(resolveEndpoint({ DOCKER_HOST: 'ssh://me@h:2222' }, undefined).options.agent);
    const missingCa = () =>
      resolveEndpoint(
        { DOCKER_HOST: 'tcp://h', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/nonexistent' },
        undefined,
      );
    assert.throws(missingCa, (e) => e instanceof SbxError && e.kind === 'usage' && /ca\.pem/.test(e.message));
    assert.throws(
      () => resolveEndpoint({ DOCKER_HOST: 'bogus' }, undefined),
      (e) => e instanceof SbxError && e.exitCode === 2,
    );
    assert.throws(
      () => resolveEndpoint({ DOCKER_CONFIG: config }, { context: 'nope', from: '--context' }),
      (e) => e instanceof SbxError && /Known contexts: default, (far, near|near, far)/.test(e.hint ?? ''),
    );
  });
});
