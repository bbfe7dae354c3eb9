import assert from 'node:assert/strict';
import { lstatSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hostGit, repository, sbx } from '../helpers/cli.js';
import { cleanupTestResources } from '../helpers/engine.js';

after(() => cleanupTestResources());

/**
 * Issue 27 point 0: the host's git folder is not writable from a sandbox. From inside a plain and a
 * --branch sandbox, as the agent user and as root, the agent tries every way it knows to make the
 * user's own later git on the host run a command of its choosing (each touches a marker in a host
 * folder the sandbox cannot see); the user's `git status`, `commit` and `checkout` on the host then
 * run none of them, while the agent's own commit inside works and reaches the host as a ref.
 */

const git = hostGit;

/** Every attempt; each line may fail (that is the point), the script goes on. */
const attacks = (m: string) => `
G=$(git rev-parse --path-format=absolute --git-dir)
C=$(git rev-parse --path-format=absolute --git-common-dir)
E=$PWD/.evil; mkdir -p $E/hooks
printf '#!/bin/sh\\ntouch ${m}/hook\\n' > $E/hooks/pre-commit; chmod +x $E/hooks/pre-commit
cp $E/hooks/pre-commit $E/hooks/post-checkout; cp $E/hooks/pre-commit $E/hooks/post-commit
printf '[core]\\n\\trepositoryformatversion = 0\\n\\tfsmonitor = "touch ${m}/fsmonitor; false"\\n\\thooksPath = %s/hooks\\n[filter "evil"]\\n\\tclean = "touch ${m}/filter; cat"\\n' $E > $E/config
for x in objects refs HEAD packed-refs; do ln -s $C/$x $E/$x 2>/dev/null; done
# (1) commondir to a config of the sandbox's, wherever git's folders are
for d in "$G" "$C" /run/sbx/host-git /run/sbx/host-git/worktrees/*; do printf '%s\\n' "$E" > "$d/commondir" 2>/dev/null; done
# (2) rename the git folder (or the worktree's .git file) away and put an edited copy back
for d in "$C" "$PWD/.git"; do mv "$d" "$d.old" 2>/dev/null && cp -a "$d.old" "$d" && cat $E/config >> "$d/config" 2>/dev/null; done
git config core.fsmonitor "touch ${m}/own-config; false" 2>/dev/null
cat $E/config >> /run/sbx/host-git/config 2>/dev/null
cp $E/hooks/pre-commit /run/sbx/host-git/hooks/pre-commit 2>/dev/null
cp $E/hooks/pre-commit "$C/hooks/pre-commit" 2>/dev/null
# (3) a nested repository registered as a submodule, with its own fsmonitor
git init -q sub && git -C sub config core.fsmonitor "touch ${m}/submodule; false" && git -C sub commit -q --allow-empty -m s
git update-index --add --cacheinfo 160000,$(git -C sub rev-parse HEAD),sub 2>/dev/null
printf '[submodule "sub"]\\n\\tpath = sub\\n\\turl = ./sub\\n' > .gitmodules
# and others: attributes naming a filter, packed-refs, alternates, worktrees/*/gitdir, a symlinked .git
echo '* filter=evil' > .gitattributes
for d in "$C" /run/sbx/host-git; do
  echo '* filter=evil' > "$d/info/attributes" 2>/dev/null
  for w in "$d"/worktrees/*; do printf '%s\\n' "$E/.git" > "$w/gitdir" 2>/dev/null; done
done
printf '%s\\n' "$E/objects" > /run/sbx/host-git/objects/info/alternates 2>/dev/null
echo "0000000000000000000000000000000000000000 refs/heads/evil" >> /run/sbx/host-git/packed-refs 2>/dev/null
mv .git .git-gone 2>/dev/null && ln -s $E .git 2>/dev/null
echo change >> README
echo attacked
`;

const COMMIT = 'echo work > work.txt && git add work.txt && git commit -qm agent-work && echo committed';

describe("private history: the host's git folder is not the sandbox's", { timeout: 1_200_000 }, () => {
  for (const kind of ['plain', 'branch'] as const)
    for (const asRoot of [false, true])
      it(`${kind} sandbox, as ${asRoot ? 'root' : 'the agent user'}: the user's git status, commit and checkout on the host run nothing planted; the agent's commit comes back as a ref`, async () => {
        const repo = await repository();
        const branch = `feat-${asRoot ? 'root' : 'agent'}`;
        const made = await sbx(['create', 'shell', ...(kind === 'branch' ? ['--branch', branch] : [])], {
          cwd: repo,
        });
        assert.equal(made.code, 0, made.stderr);
        const ws = kind === 'branch' ? join(dirname(repo), `${basename(repo)}.worktrees`, branch) : repo;
        const markers = mkdtempSync(join(tmpdir(), 'sbx-marker-'));
        const as = asRoot ? ['-u', 'root'] : [];
        const committed = await sbx(['exec', ...as, ws, '--', 'sh', '-c', COMMIT]);
        assert.match(
          committed.stdout,
          /committed/,
          `the agent's own commit works inside:\n${committed.stderr}`,
        );
        const r = await sbx(['exec', ...as, ws, '--', 'sh', '-c', attacks(markers)]);
        assert.match(r.stdout, /attacked/, r.stderr);
        assert.ok(lstatSync(join(repo, '.git')).isDirectory(), "the host's .git is still its own folder");
        const listed = JSON.parse((await sbx(['ls', '--json'])).stdout) as Array<{
          name: string;
          workspace: string;
        }>;
        const name = listed.find((s) => s.workspace === ws)?.name;
        assert.ok(name, 'the sandbox is listed');

        // The user, on the host, with their own git: status, commit, checkout.
        for (const where of new Set([ws, repo])) {
          try {
            git(where, 'status');
            writeFileSync(join(where, `user-${basename(where)}.txt`), 'mine\n');
            git(where, 'add', `user-${basename(where)}.txt`);
            git(where, 'commit', '-qm', 'user work');
            git(where, 'checkout', '-q', '-b', `user-side-${basename(where)}`);
          } catch (err) {
            // A git that refuses is no harm; a git that runs what was planted is.
            assert.ok(err instanceof Error);
          }
        }
        assert.deepEqual(readdirSync(markers), [], 'git on the host ran what the sandbox planted');

        assert.equal((await sbx(['stop', ws])).code, 0);
        const ref = `refs/remotes/sbx/${name}/${kind === 'branch' ? branch : `sbx/${name}`}`;
        assert.equal(
          git(repo, 'log', '-1', '--format=%s', ref),
          'agent-work',
          'the agent commit is on the host as a ref',
        );
        assert.equal(git(repo, 'show', `${ref}:work.txt`), 'work');
        assert.deepEqual(readdirSync(markers), [], 'bringing the commits in ran what the sandbox planted');
        await sbx(['rm', '-f', ws]);
      });
});
