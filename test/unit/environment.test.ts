import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { extraCaCerts, proxyEnv } from '../../src/config/tls-proxy.js';
import { resolveWorkspace } from '../../src/sandbox/identity.js';
import type { SbxError } from '../../src/shared/errors.js';
import { extraLabels } from '../../src/shared/labels.js';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('extraCaCerts', () => {
  it('reads PEM files from a folder or a file, skipping other files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-ca-'));
    writeFileSync(join(dir, 'corp.pem'), PEM);
    writeFileSync(join(dir, 'notes.txt'), 'x');
    writeFileSync(join(dir, 'empty.crt'), 'not a cert');
    assert.deepEqual(extraCaCerts(undefined, { SBX_CA_CERTS: dir }), [{ name: 'corp.crt', pem: PEM }]);
    assert.deepEqual(extraCaCerts(join(dir, 'corp.pem'), {}), [{ name: 'corp.crt', pem: PEM }]);
    assert.deepEqual(extraCaCerts(dir, { SBX_CA_CERTS: 'none' }), []);
    assert.throws(
      () => extraCaCerts('/nonexistent/ca', {}),
      (err: SbxError) => err.kind === 'notFound',
    );
  });

  it('passes only the proxy variables that are set', () => {
    assert.deepEqual(proxyEnv({ HTTPS_PROXY: 'http://p:1', no_proxy: 'localhost', PATH: '/bin' }), {
      HTTPS_PROXY: 'http://p:1',
      no_proxy: 'localhost',
    });
  });
});

describe('workspace and labels', () => {
  it('resolves the real path and refuses a file or a missing folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sbx-ws-'));
    writeFileSync(join(dir, 'f'), '');
    assert.equal(resolveWorkspace('.', dir), dir);
    assert.throws(
      () => resolveWorkspace('f', dir),
      (err: SbxError) => err.kind === 'notFound' && /not a folder/.test(err.message),
    );
    assert.throws(
      () => resolveWorkspace('nope', dir),
      (err: SbxError) => err.exitCode === 66,
    );
  });

  it('parses SBX_LABELS', () => {
    assert.deepEqual(extraLabels({ SBX_LABELS: 'a=1, b=x=y,' }), { a: '1', b: 'x=y' });
    assert.deepEqual(extraLabels({}), {});
  });
});
