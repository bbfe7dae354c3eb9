import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { within, workspaceProblem } from '../../src/sandbox/workspace-guard.js';

const folders = { home: '/home/ada', sbx: ['/home/ada/.config/sbx', '/var/cache/ada/sbx'] };

describe('workspaceProblem: a project, not a home', () => {
  it('refuses /, the home, its parents, and folders holding or inside sbx folders', () => {
    assert.deepEqual(workspaceProblem('/', folders), { kind: 'root' });
    assert.deepEqual(workspaceProblem('/home/ada', folders), { kind: 'home' });
    assert.deepEqual(workspaceProblem('/home', folders), { kind: 'holdsHome' });
    assert.deepEqual(workspaceProblem('/home/ada/.config', folders), {
      kind: 'holdsSbx',
      folder: '/home/ada/.config/sbx',
    });
    assert.deepEqual(workspaceProblem('/var/cache', folders), {
      kind: 'holdsSbx',
      folder: '/var/cache/ada/sbx',
    });
    assert.deepEqual(workspaceProblem('/home/ada/.config/sbx', folders), {
      kind: 'insideSbx',
      folder: '/home/ada/.config/sbx',
    });
    assert.deepEqual(workspaceProblem('/var/cache/ada/sbx/features/x', folders), {
      kind: 'insideSbx',
      folder: '/var/cache/ada/sbx',
    });
  });

  it('takes projects: subfolders of home, siblings with a common prefix', () => {
    for (const ok of [
      '/home/ada/src/app',
      '/home/ada/.config/sbx-other',
      '/home/adam',
      '/srv/app',
      '/var/cache/ada/sbx2',
    ])
      assert.equal(workspaceProblem(ok, folders), undefined, ok);
  });

  it('within compares whole path segments', () => {
    assert.ok(within('/a/b', '/a/b'));
    assert.ok(within('/a/b', '/a/b/c'));
    assert.ok(!within('/a/b', '/a/bc'));
    assert.ok(!within('/a/b', '/a'));
    assert.ok(within('/', '/a'));
  });
});
