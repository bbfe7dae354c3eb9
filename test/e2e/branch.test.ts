import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hostGit, repository, sbx, workspace } from '../helpers/cli.js';
import { cleanupTestResources } from '../helpers/engine.js';

after(() => cleanupTestResources());

const git = hostGit;

describe('--branch: a worktree per sandbox', { timeout: 600_000 }, () => {
  it('two sandboxes on two branches commit the same file without touching each other or the checkout', async () => {
    const repo = await repository();
    const commit = (branch: string, text: string) =>
      sbx(
        [
          'run',
          'shell',
          '--branch',
          branch,
          '--',
          'sh',
          '-c',
          `echo ${text} > same.txt && git add same.txt && git commit -qm ${text} && pwd`,
        ],
        { cwd: repo },
      );
    const [a, b] = await Promise.all([commit('feat-a', 'from-a'), commit('feat-b', 'from-b')]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    const wtA = join(dirname(repo), `${basename(repo)}.worktrees`, 'feat-a');
    assert.equal(a.stdout.trim(), wtA, 'the worktree is mounted at its own path');
    // Private history: the commits are the sandboxes' own until sbx brings them in (here at stop),
    // as refs/remotes/sbx/NAME/BRANCH; the branches themselves do not move.
    const wtB = join(dirname(repo), `${basename(repo)}.worktrees`, 'feat-b');
    const names = JSON.parse((await sbx(['ls', '--json'])).stdout) as Array<{
      name: string;
      workspace: string;
    }>;
    const nameOf = (ws: string) => names.find((s) => s.workspace === ws)!.name;
    assert.equal((await sbx(['stop', wtA, wtB])).code, 0);
    const refA = `refs/remotes/sbx/${nameOf(wtA)}/feat-a`;
    assert.equal(git(repo, 'show', `${refA}:same.txt`), 'from-a');
    assert.equal(git(repo, 'show', `refs/remotes/sbx/${nameOf(wtB)}/feat-b:same.txt`), 'from-b');
    assert.equal(git(repo, 'log', '-1', '--format=%an <%ae>', refA), 'Ada Tester <ada@example.test>');
    assert.throws(() => git(repo, 'show', 'feat-a:same.txt'), 'the branch itself has not moved');
    assert.equal(git(repo, 'status', '--porcelain'), '', "the user's checkout is untouched");
    assert.ok(!existsSync(join(repo, 'same.txt')));

    const listed = JSON.parse((await sbx(['ls', '--json'])).stdout) as Array<{
      workspace: string;
      branch: string;
    }>;
    assert.equal(listed.find((s) => s.workspace === wtA)?.branch, 'feat-a');
    const inspected = JSON.parse((await sbx(['inspect', wtA, '--json'])).stdout);
    assert.deepEqual(inspected.worktree, { path: wtA, branch: 'feat-a', repository: repo, from: 'HEAD' });

    const guarded = await sbx(
      [
        'run',
        'shell',
        '--branch',
        'feat-a',
        '--',
        'sh',
        '-c',
        'echo x > "$(git rev-parse --git-common-dir)/hooks/pre-commit" 2>/dev/null && echo HOOK || echo hook-refused; git config core.hooksPath /tmp 2>/dev/null && echo CONFIG || echo config-refused',
      ],
      { cwd: repo },
    );
    // The sandbox's git folder is its own: a hook or setting there stays there.
    assert.equal(guarded.stdout, 'HOOK\nCONFIG\n', guarded.stderr);
    assert.ok(!existsSync(join(repo, '.git', 'hooks', 'pre-commit')), "the host's git folder is untouched");
    assert.doesNotMatch(git(repo, 'config', '--list'), /hookspath=\/tmp/);
  });

  it('rm --worktree refuses with uncommitted changes or unmerged commits, and with -f removes the worktree, never the branch', async () => {
    const repo = await repository();
    const made = await sbx(['create', 'shell', '--branch', '--json'], { cwd: repo });
    assert.equal(made.code, 0, made.stderr);
    const wt = join(dirname(repo), `${basename(repo)}.worktrees`, 'sbx-shell-1');
    assert.equal(git(wt, 'branch', '--show-current'), 'sbx/shell-1', 'a fresh branch name');
    writeFileSync(join(wt, 'draft.txt'), 'unsaved');
    const dirty = await sbx(['rm', '-f', '--worktree', wt]);
    // -f alone forces the worktree too; so check the refusal without it on a stopped sandbox.
    assert.equal(dirty.code, 0, dirty.stderr);
    assert.ok(!existsSync(wt));
    assert.equal(
      git(repo, 'rev-parse', '--verify', '--quiet', 'refs/heads/sbx/shell-1').length > 0,
      true,
      'the branch stays',
    );

    await sbx(['create', 'shell', '--branch', 'keep'], { cwd: repo });
    const kept = join(dirname(repo), `${basename(repo)}.worktrees`, 'keep');
    writeFileSync(join(kept, 'draft.txt'), 'unsaved');
    await sbx(['stop', kept]);
    const refused = await sbx(['rm', '--worktree', kept]);
    assert.equal(refused.code, 75, refused.stderr);
    assert.match(refused.stderr, /uncommitted changes:\n\?\? draft\.txt/);
    assert.ok(existsSync(join(kept, 'draft.txt')), 'nothing removed');
    git(kept, 'add', 'draft.txt');
    git(kept, 'commit', '-qm', 'draft');
    const unmerged = await sbx(['rm', '--worktree', kept]);
    assert.equal(unmerged.code, 75, unmerged.stderr);
    assert.match(unmerged.stderr, /commits no other branch has:\n[0-9a-f]+ draft/);
    git(repo, 'branch', 'also-has-it', 'keep');
    const clean = await sbx(['rm', '--worktree', kept]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.ok(!existsSync(kept));
  });

  it('says what is wrong: not a repository, an invalid name, a branch checked out elsewhere', async () => {
    const plain = await workspace({ git: false });
    const notRepo = await sbx(['run', 'shell', '--branch', 'x', '--', 'true'], { cwd: plain });
    assert.equal(notRepo.code, 2, notRepo.stderr);
    assert.match(notRepo.stderr, /not in a git repository/);
    const repo = await repository();
    const invalid = await sbx(['run', 'shell', '--branch', 'bad..name', '--', 'true'], { cwd: repo });
    assert.equal(invalid.code, 2, invalid.stderr);
    assert.match(invalid.stderr, /"bad\.\.name" is not a valid branch name/);
    const current = git(repo, 'branch', '--show-current');
    const busy = await sbx(['run', 'shell', '--branch', current, '--', 'true'], { cwd: repo });
    assert.equal(busy.code, 75, busy.stderr);
    assert.match(busy.stderr, new RegExp(`${current} is already checked out at ${repo}`));
  });
});
