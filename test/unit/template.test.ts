import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { SbxError } from '../../src/shared/errors.js';
import { planTemplate } from '../../src/templates/build.js';
import { contentHash, contextFiles, parentTemplates, resolveTemplate } from '../../src/templates/template.js';

const folder = (files: Record<string, string>) => {
  const dir = mkdtempSync(join(tmpdir(), 'sbx-tpl-'));
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
};

describe('parentTemplates', () => {
  it('finds the sbx templates a Dockerfile starts FROM', () => {
    assert.deepEqual(parentTemplates('FROM sbx/claude\nRUN x\n'), ['claude']);
    assert.deepEqual(
      parentTemplates('from --platform=linux/amd64 sbx/base:latest AS b\nFROM debian:trixie\n'),
      ['base'],
    );
    assert.deepEqual(parentTemplates('FROM node:20\n'), []);
  });
});

describe('contentHash', () => {
  it('changes with content, names, the executable bit, extra certs and parents; ignores .dockerignored files', () => {
    const dir = folder({
      Dockerfile: 'FROM x\n',
      'a.sh': 'echo a',
      '.dockerignore': 'node_modules\n',
      'node_modules/big': '1',
    });
    const base = contentHash(dir, [], []);
    assert.equal(contentHash(dir, [], []), base);
    writeFileSync(join(dir, 'node_modules/big'), '2');
    assert.equal(contentHash(dir, [], []), base, 'ignored files do not count');
    assert.deepEqual(
      contextFiles(dir).files.map((f) => f.path),
      ['.dockerignore', 'Dockerfile', 'a.sh'],
    );
    chmodSync(join(dir, 'a.sh'), 0o755);
    const exec = contentHash(dir, [], []);
    assert.notEqual(exec, base);
    writeFileSync(join(dir, 'a.sh'), 'echo b');
    assert.notEqual(contentHash(dir, [], []), exec);
    assert.notEqual(contentHash(dir, [{ name: 'x.crt', pem: 'p' }], []), contentHash(dir, [], []));
    assert.notEqual(contentHash(dir, [], ['parent']), contentHash(dir, [], []));
  });

  it('gives a child template a new tag when its built-in parent changes', () => {
    const child = folder({ Dockerfile: 'FROM sbx/base\n' });
    const plain = planTemplate({ kind: 'folder', name: 'c', dir: child, builtin: false }, []);
    const withCa = planTemplate({ kind: 'folder', name: 'c', dir: child, builtin: false }, [
      { name: 'ca.crt', pem: 'x' },
    ]);
    assert.equal(plain.parents[0]?.source.name, 'base');
    assert.notEqual(plain.tag, withCa.tag);
    assert.match(plain.tag, /^sbx\/custom-c:[0-9a-f]{12}$/);
  });
});

describe('resolveTemplate', () => {
  const ws = folder({ '.sbx/templates/mine/Dockerfile': 'FROM sbx/claude\n' });
  const user = folder({ 'other/Dockerfile': 'FROM sbx/base\n' });

  it('finds workspace, user and built-in templates, folders and image references', () => {
    assert.equal(resolveTemplate('mine', ws, user).kind, 'folder');
    assert.deepEqual(resolveTemplate('other', ws, user), {
      kind: 'folder',
      name: 'other',
      dir: join(user, 'other'),
      builtin: false,
    });
    assert.equal((resolveTemplate('claude', ws, user) as { builtin: boolean }).builtin, true);
    assert.deepEqual(resolveTemplate('ghcr.io/acme/agent:1', ws, user), {
      kind: 'image',
      ref: 'ghcr.io/acme/agent:1',
    });
    assert.equal(resolveTemplate(join(user, 'other'), ws, user).kind, 'folder');
  });

  it('says where it looked when a name is unknown, and refuses a folder without Dockerfile', () => {
    assert.throws(
      () => resolveTemplate('nosuch', ws, user),
      (err: SbxError) => err.kind === 'notFound' && err.message.includes(user),
    );
    assert.throws(
      () => resolveTemplate('./missing-folder', ws, user),
      (err: SbxError) => err.kind === 'notFound',
    );
    assert.throws(
      () => resolveTemplate(ws, ws, user),
      (err: SbxError) => /no Dockerfile/.test(err.message),
    );
  });
});
