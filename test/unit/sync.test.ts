import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { checkScan, tarEntryProblem } from '../../src/sync/check.js';
import { isProtected, planSync } from '../../src/sync/plan.js';
import {
  checkCommit,
  commitTree,
  ignoreMatcher,
  PathRefused,
  pathProblem,
  prepareStaging,
  STAGING,
  scanTree,
  type Tree,
} from '../../src/sync/tree.js';

const tree = (ids: Record<string, string>): Tree =>
  Object.fromEntries(Object.entries(ids).map(([p, id]) => [p, { id, size: 1, mtimeMs: 1 }]));

describe('planSync: three-way decisions against the last sync', () => {
  const base = {
    same: { id: 'a' },
    here: { id: 'a' },
    there: { id: 'a' },
    both: { id: 'a' },
    delHere: { id: 'a' },
    delThere: { id: 'a' },
    delEdit: { id: 'a' },
  };
  const local = tree({
    same: 'a',
    here: 'b',
    there: 'a',
    both: 'b',
    delThere: 'a',
    delEdit: 'a',
    newHere: 'n',
  });
  const remote = tree({
    same: 'a',
    here: 'a',
    there: 'c',
    both: 'c',
    delHere: 'a',
    delEdit: 'e',
    newThere: 'm',
  });
  delete (local as Record<string, unknown>).delEdit;

  it('copies the changed side, deletes over unchanged files only, and reports conflicts', () => {
    const plan = planSync(base, local, remote, { direction: 'both' });
    assert.deepEqual(plan.push, { files: ['here', 'newHere'], dirs: [], deletes: ['delHere'] });
    assert.deepEqual(plan.pull, { files: ['newThere', 'there'], dirs: [], deletes: ['delThere'] });
    assert.deepEqual(plan.conflicts, [
      { path: 'both', local: 'changed', remote: 'changed' },
      { path: 'delEdit', local: 'deleted', remote: 'changed' },
    ]);
    assert.deepEqual(plan.same, ['same']);
  });

  it('--ours and --theirs settle conflicts; one direction leaves the other waiting', () => {
    const ours = planSync(base, local, remote, { direction: 'both', prefer: 'ours' });
    assert.deepEqual(ours.conflicts, []);
    assert.ok(ours.push.files.includes('both') && ours.push.deletes.includes('delEdit'));
    const theirs = planSync(base, local, remote, { direction: 'both', prefer: 'theirs' });
    assert.ok(theirs.pull.files.includes('both') && theirs.pull.files.includes('delEdit'));
    const pull = planSync(base, local, remote, { direction: 'pull', prefer: 'ours' });
    assert.deepEqual(pull.push, { files: [], dirs: [], deletes: [] });
    assert.deepEqual(pull.pull.files, ['newThere', 'there']);
  });

  it('files added on both sides: the same content is in sync, different content a conflict', () => {
    const plan = planSync({}, tree({ x: '1', y: '1' }), tree({ x: '1', y: '2' }), { direction: 'both' });
    assert.deepEqual(plan.same, ['x']);
    assert.deepEqual(plan.conflicts, [{ path: 'y', local: 'added', remote: 'added' }]);
  });

  it('protected paths never come back; the host version goes back instead', () => {
    const plan = planSync(
      { '.git/config': { id: 'a' } },
      tree({ '.git/config': 'a' }),
      tree({ '.git/config': 'evil', '.git/hooks/pre-commit': 'evil' }),
      { direction: 'both', protect: isProtected },
    );
    assert.deepEqual(plan.pull.files, []);
    assert.deepEqual(plan.protected, ['.git/config', '.git/hooks/pre-commit']);
    assert.deepEqual(plan.push, { files: ['.git/config'], dirs: [], deletes: ['.git/hooks/pre-commit'] });
    assert.ok(!isProtected('.github/hooks') && isProtected('.sbx/settings.json'));
  });
});

describe('ignoreMatcher: gitignore-style excludes', () => {
  const ignored = ignoreMatcher(['node_modules', '*.log', '/build', 'dist/', 'docs/**/*.pdf', '# comment']);
  it('matches names anywhere, anchored paths from the root, folders only with a slash', () => {
    assert.ok(ignored('node_modules', true) && ignored('a/b/node_modules', true));
    assert.ok(ignored('x.log', false) && ignored('deep/x.log', false));
    assert.ok(ignored('build', true) && !ignored('src/build', true));
    assert.ok(ignored('dist', true) && !ignored('dist', false));
    assert.ok(ignored('docs/a/b/c.pdf', false) && !ignored('other/c.pdf', false));
    assert.ok(!ignored('src/index.ts', false));
  });
});

describe('scanTree and commitTree', () => {
  it('hashes contents, reuses known hashes while size and mtime stay, and sees kinds and the exec bit', () => {
    const root = mkdtempSync(join(tmpdir(), 'sbx-scan-'));
    writeFileSync(join(root, 'a'), 'one');
    writeFileSync(join(root, 'run.sh'), 'echo');
    chmodSync(join(root, 'run.sh'), 0o755);
    symlinkSync('a', join(root, 'link'));
    mkdirSync(join(root, 'empty'));
    mkdirSync(join(root, 'node_modules'));
    writeFileSync(join(root, 'node_modules', 'x'), 'x');
    mkdirSync(join(root, STAGING));
    const first = scanTree(root, {}, ['node_modules']);
    assert.deepEqual(Object.keys(first).sort(), ['a', 'empty', 'link', 'run.sh']);
    assert.match(first.a!.id, /^file-:[0-9a-f]{64}$/);
    assert.match(first['run.sh']!.id, /^filex:/);
    assert.equal(first.link!.id, 'link:a');
    assert.equal(first.empty!.id, 'dir');
    // A known entry with the same size and mtime is trusted (no read), so a fake hash survives...
    const known = { a: { ...first.a!, id: 'file-:trusted' } };
    assert.equal(scanTree(root, known, []).a!.id, 'file-:trusted');
    // ...until the file changes.
    writeFileSync(join(root, 'a'), 'two');
    utimesSync(join(root, 'a'), new Date(), new Date(Date.now() + 5000));
    assert.notEqual(scanTree(root, known, []).a!.id, 'file-:trusted');
  });

  it('renames staged files into place, makes folders, removes deletions, and clears the staging folder', () => {
    const root = mkdtempSync(join(tmpdir(), 'sbx-commit-'));
    writeFileSync(join(root, 'old'), 'old');
    mkdirSync(join(root, 'gone'));
    prepareStaging(root);
    mkdirSync(join(root, STAGING, 'deep/er'), { recursive: true });
    writeFileSync(join(root, STAGING, 'deep/er/new'), 'new');
    writeFileSync(join(root, STAGING, 'old'), 'replaced');
    const placed = commitTree({ root, files: ['deep/er/new', 'old'], dirs: ['made'], deletes: ['gone'] });
    assert.equal(readFileSync(join(root, 'deep/er/new'), 'utf8'), 'new');
    assert.equal(readFileSync(join(root, 'old'), 'utf8'), 'replaced');
    assert.deepEqual(Object.keys(placed).sort(), ['deep/er/new', 'old']);
    assert.deepEqual(Object.keys(scanTree(root, {}, [])).sort(), [
      'deep',
      'deep/er',
      'deep/er/new',
      'made',
      'old',
    ]);
  });
});

describe('what the host accepts from a sandbox: paths, scans, archive entries, writes', () => {
  it('pathProblem refuses .., ., empty segments, absolute paths, control characters and overlong names', () => {
    for (const ok of ['a', 'a/b.txt', '.git/HEAD', 'x..y/..z', 'sp ace/é', '__proto__'])
      assert.equal(pathProblem(ok), undefined, ok);
    for (const bad of [
      '',
      '..',
      '../x',
      'x/../.git/config',
      'a/./b',
      '.',
      '/etc/passwd',
      'a//b',
      'a/',
      'a\0b',
      'a\nb',
      `${'n'.repeat(256)}`,
      'a/'.repeat(2100),
    ])
      assert.ok(pathProblem(bad), JSON.stringify(bad));
    assert.ok(pathProblem(42 as unknown as string));
  });

  it('checkScan: a hostile or malformed scan is refused, an honest one passes (null prototype)', () => {
    const file = { id: `file-:${'a'.repeat(64)}`, size: 1, mtimeMs: 1 };
    const honest = {
      d: { id: 'dir', size: 0, mtimeMs: 0 },
      'd/f': file,
      l: { id: 'link:../x', size: 0, mtimeMs: 0 },
    };
    const ok = checkScan(JSON.parse(JSON.stringify({ ...honest, ['__proto__']: file })));
    assert.deepEqual(ok.refused, []);
    assert.equal(Object.getPrototypeOf(ok.tree), null);
    assert.ok('__proto__' in ok.tree && 'd/f' in ok.tree);
    const refused = (answer: unknown) => checkScan(answer).refused.map((r) => r.path);
    assert.deepEqual(refused({ ...honest, '../bait': file }), ['../bait']);
    assert.deepEqual(refused({ ...honest, 'x/../.git/config': file }), ['x/../.git/config']);
    assert.deepEqual(refused({ ...honest, '/etc/passwd': file }), ['/etc/passwd']);
    assert.deepEqual(refused({ ...honest, 'l/escape': file }), ['l/escape'], 'under a symlink');
    assert.deepEqual(refused({ ...honest, 'nodir/f': file }), ['nodir/f'], 'folder missing');
    assert.deepEqual(refused({ ...honest, 'd/f': { id: 'file-:zz', size: 1, mtimeMs: 1 } }), ['d/f']);
    assert.deepEqual(refused({ ...honest, 'd/f': { ...file, size: -1 } }), ['d/f']);
    assert.deepEqual(refused({ ...honest, 'd/f': null }), ['d/f']);
    assert.deepEqual(refused({ ...honest, 'a\nb': file }), ['a\nb']);
    assert.deepEqual(refused([file]), ['']);
    assert.deepEqual(refused('x'), ['']);
  });

  it('tarEntryProblem: only the files asked for, once, of the kind scanned, no larger', () => {
    const wanted = new Map([
      ['f', { id: `file-:${'a'.repeat(64)}`, size: 10 }],
      ['l', { id: 'link:target', size: 0 }],
    ]);
    const seen = new Set<string>();
    assert.equal(
      tarEntryProblem({ name: 'f', type: 'file', size: 10, mode: 0o4755 }, wanted, seen),
      undefined,
    );
    assert.match(tarEntryProblem({ name: 'f', type: 'file', size: 1 }, wanted, seen)!, /twice/);
    assert.match(tarEntryProblem({ name: '../x', type: 'file', size: 1 }, wanted, new Set())!, /not one/);
    assert.match(tarEntryProblem({ name: 'f', type: 'file', size: 11 }, wanted, new Set())!, /bytes/);
    for (const type of ['link', 'symlink', 'character-device', 'block-device', 'fifo', 'directory'])
      assert.ok(
        tarEntryProblem({ name: 'f', type, size: 0, linkname: '/etc/passwd' }, wanted, new Set()),
        type,
      );
    assert.equal(
      tarEntryProblem({ name: 'l', type: 'symlink', linkname: '/anywhere' }, wanted, new Set()),
      undefined,
    );
    assert.ok(tarEntryProblem({ name: 'l', type: 'file', size: 0 }, wanted, new Set()));
  });

  it('checkCommit and commitTree write nothing through a symlink or outside the root', () => {
    const parent = mkdtempSync(join(tmpdir(), 'sbx-unit-'));
    const root = join(parent, 'ws');
    mkdirSync(join(root, 'real'), { recursive: true });
    symlinkSync('..', join(root, 'up'));
    writeFileSync(join(root, 'plain'), 'x');
    const commit = (c: { files?: string[]; dirs?: string[]; deletes?: string[] }) => ({
      root,
      files: [],
      dirs: [],
      deletes: [],
      ...c,
    });
    assert.throws(() => checkCommit(commit({ files: ['up/bait'] })), PathRefused);
    assert.throws(() => checkCommit(commit({ deletes: ['up/ws/plain'] })), PathRefused);
    assert.throws(() => checkCommit(commit({ dirs: ['up/new'] })), PathRefused);
    assert.throws(() => checkCommit(commit({ files: ['plain/x'] })), /not a folder/);
    assert.throws(() => checkCommit(commit({ files: ['../bait'] })), PathRefused);
    // A folder the commit itself makes in place of the symlink is fine.
    assert.doesNotThrow(() => checkCommit(commit({ dirs: ['up'], files: ['up/f', 'real/f'] })));
    // At the write itself: a symlink swapped in after the check is refused.
    prepareStaging(root);
    mkdirSync(join(root, STAGING, 'real'));
    writeFileSync(join(root, STAGING, 'real', 'f'), 'new');
    symlinkSync(parent, join(root, 'swapped'));
    assert.throws(() => commitTree(commit({ files: ['swapped/f'] })), PathRefused);
    assert.ok(!existsSync(join(parent, 'f')));
  });

  it('.git itself, its hooks and config, submodules’ hooks and config and .sbx are protected, in any case', () => {
    for (const p of [
      '.git',
      '.git/config',
      '.GIT/config',
      '.git/hooks/pre-commit',
      '.git/modules/m/config',
      '.git/modules/m/hooks/x',
      '.sbx/settings.json',
    ])
      assert.ok(isProtected(p), p);
    for (const p of ['.git/HEAD', '.git/objects/ab/cd', '.gitignore', 'src/.git-x'])
      assert.ok(!isProtected(p), p);
  });
});
