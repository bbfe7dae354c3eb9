import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findSandbox, type SandboxRef } from '../../src/sandbox/discovery.js';
import type { SbxError } from '../../src/shared/errors.js';

const ws = mkdtempSync(join(tmpdir(), 'sbx-find-'));
const sandbox = (id: string, name: string, workspace: string, isDefault = true): SandboxRef => ({
  id,
  name,
  agent: 'shell',
  state: 'running',
  status: 'Up',
  workspace,
  default: isDefault,
  template: 'base',
  image: 'sbx/base:x',
  created: '2026-01-01T00:00:00.000Z',
  uid: 1000,
  gid: 1000,
  network: null,
  branch: null,
  secrets: [],
  syncVolume: null,
  dockerVolume: null,
});
const all = [
  sandbox('abc123', 'sbx-one', ws),
  sandbox('abd456', 'sbx-two', '/other'),
  sandbox('ff0000', 'abc', '/third'),
  sandbox('ee0000', 'review', ws, false),
  sandbox('dd0000', 'named-a', '/multi', false),
  sandbox('dd1111', 'named-b', '/multi', false),
];

describe('findSandbox', () => {
  it('finds by name first, then workspace path, then unique id prefix', () => {
    assert.equal(findSandbox(all, 'sbx-two').name, 'sbx-two');
    assert.equal(findSandbox(all, 'abc').name, 'abc', 'a name wins over an id prefix');
    assert.equal(findSandbox(all, '.', ws).name, 'sbx-one');
    assert.equal(findSandbox(all, ws).name, 'sbx-one');
    assert.equal(findSandbox(all, 'abd').name, 'sbx-two');
  });

  it('a path with several sandboxes means its default one; without one, it is ambiguous', () => {
    assert.equal(findSandbox(all, ws).name, 'sbx-one');
    assert.equal(findSandbox(all, 'review').name, 'review');
    assert.throws(
      () => findSandbox(all, '/multi'),
      (err: SbxError) => err.exitCode === 2 && /named-a, named-b/.test(err.message),
    );
    assert.throws(
      () => findSandbox(all, '/nowhere'),
      (err: SbxError) => err.kind === 'notFound',
    );
  });

  it('lists the matches of an ambiguous prefix, and says how to see them when nothing matches', () => {
    assert.throws(
      () => findSandbox(all, 'ab'),
      (err: SbxError) => err.exitCode === 2 && /sbx-one \(abc123\), sbx-two \(abd456\)/.test(err.message),
    );
    assert.throws(
      () => findSandbox(all, 'zzz'),
      (err: SbxError) => err.kind === 'notFound' && /sbx ls/.test(err.hint ?? ''),
    );
  });
});
