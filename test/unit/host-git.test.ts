import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findRepository, hardenedEnv, worktreeGitDir } from '../../src/git/host-git.js';
import { HOST_GIT, initScript, privateGit } from '../../src/git/private-history.js';
import { repositoryOfWorktree } from '../../src/git/worktree.js';

const scratch = () => realpathSync(mkdtempSync(join(tmpdir(), 'sbx-unit-git-')));

describe('host git: sbx finds the repository, not git', () => {
  it('takes the nearest real .git folder; a symlinked .git is not one', () => {
    const root = scratch();
    mkdirSync(join(root, 'repo/.git'), { recursive: true });
    mkdirSync(join(root, 'repo/sub/deeper'), { recursive: true });
    assert.deepEqual(findRepository(join(root, 'repo/sub/deeper')), {
      top: join(root, 'repo'),
      common: join(root, 'repo/.git'),
    });
    mkdirSync(join(root, 'elsewhere/.git'), { recursive: true });
    mkdirSync(join(root, 'linked'));
    symlinkSync(join(root, 'elsewhere/.git'), join(root, 'linked/.git'));
    assert.equal(findRepository(join(root, 'linked')), undefined);
  });

  it("follows a worktree's .git file only to <repo>/.git/worktrees/<id>, never through commondir", () => {
    const root = scratch();
    mkdirSync(join(root, 'repo/.git/worktrees/wt'), { recursive: true });
    writeFileSync(join(root, 'repo/.git/worktrees/wt/commondir'), `${root}/evil\n`);
    mkdirSync(join(root, 'wt'));
    writeFileSync(join(root, 'wt/.git'), `gitdir: ${root}/repo/.git/worktrees/wt\n`);
    assert.deepEqual(findRepository(join(root, 'wt')), {
      top: join(root, 'repo'),
      common: join(root, 'repo/.git'),
    });
    mkdirSync(join(root, 'evil/gitdir'), { recursive: true });
    writeFileSync(join(root, 'wt/.git'), `gitdir: ${root}/evil/gitdir\n`);
    assert.equal(findRepository(join(root, 'wt')), undefined);
  });

  it("finds a worktree's git folder by the repository's gitdir records, not the worktree's .git file", () => {
    const root = scratch();
    const repo = { top: join(root, 'repo'), common: join(root, 'repo/.git') };
    mkdirSync(join(repo.common, 'worktrees/a'), { recursive: true });
    mkdirSync(join(repo.common, 'worktrees/b'), { recursive: true });
    writeFileSync(join(repo.common, 'worktrees/a/gitdir'), `${root}/other/.git\n`);
    writeFileSync(join(repo.common, 'worktrees/b/gitdir'), `${root}/repo.worktrees/x/.git\n`);
    assert.equal(worktreeGitDir(repo, join(root, 'repo.worktrees/x')), join(repo.common, 'worktrees/b'));
    assert.equal(worktreeGitDir(repo, join(root, 'nowhere')), undefined);
  });

  it("a sandbox worktree's repository comes from its path (<repo>.worktrees/<branch>)", () => {
    const root = scratch();
    mkdirSync(join(root, 'proj/.git'), { recursive: true });
    assert.deepEqual(repositoryOfWorktree(join(root, 'proj.worktrees/feat')), {
      top: join(root, 'proj'),
      common: join(root, 'proj/.git'),
    });
    assert.equal(repositoryOfWorktree(join(root, 'proj/feat')), undefined);
  });

  it("runs with none of the caller's GIT_* variables, no prompt and no pager", () => {
    process.env.GIT_DIR = '/evil';
    process.env.GIT_CONFIG_PARAMETERS = "'core.fsmonitor'='touch /x'";
    try {
      const env = hardenedEnv();
      assert.equal(env.GIT_DIR, undefined);
      assert.equal(env.GIT_CONFIG_PARAMETERS, undefined);
      assert.equal(env.GIT_TERMINAL_PROMPT, '0');
      assert.equal(env.GIT_PAGER, 'cat');
    } finally {
      delete process.env.GIT_DIR;
      delete process.env.GIT_CONFIG_PARAMETERS;
    }
  });
});

describe('private history: the mounts of a sandbox of a repository', () => {
  it("a plain sandbox at the repository's top: the host's .git read-only elsewhere, a volume in its place", () => {
    const root = scratch();
    mkdirSync(join(root, 'repo/.git'), { recursive: true });
    const own = privateGit('box', join(root, 'repo'), undefined);
    assert.equal(own?.branch, 'sbx/box');
    assert.deepEqual(own?.mounts, [
      { Type: 'bind', Source: join(root, 'repo/.git'), Target: HOST_GIT, ReadOnly: true },
      { Type: 'volume', Source: 'box-git', Target: join(root, 'repo/.git') },
    ]);
    assert.equal(
      privateGit('box', join(root, 'repo/sub'), undefined),
      undefined,
      'a subfolder mounts no git folder',
    );
  });

  it("a --branch sandbox: the volume over the worktree's git folder, its .git file read-only over itself", () => {
    const root = scratch();
    const common = join(root, 'repo/.git');
    mkdirSync(join(common, 'worktrees/feat'), { recursive: true });
    mkdirSync(join(root, 'repo.worktrees/feat'), { recursive: true });
    writeFileSync(join(common, 'worktrees/feat/gitdir'), `${root}/repo.worktrees/feat/.git\n`);
    const wt = { path: join(root, 'repo.worktrees/feat'), branch: 'feat', repository: join(root, 'repo') };
    const own = privateGit('box', wt.path, wt);
    assert.equal(own?.branch, 'feat');
    assert.equal(own?.hostGitDir, `${HOST_GIT}/worktrees/feat`);
    assert.deepEqual(
      own?.mounts.map((m) => [m.Type, m.Target, Boolean(m.ReadOnly)]),
      [
        ['bind', HOST_GIT, true],
        ['volume', join(common, 'worktrees/feat'), false],
        ['bind', join(wt.path, '.git'), true],
      ],
    );
    assert.match(initScript(own!, 1000, 1000), /objects/);
  });
});
