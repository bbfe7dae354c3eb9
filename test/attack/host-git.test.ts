import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { hostGit, repository, sbx } from '../helpers/cli.js';
import { cleanupTestResources } from '../helpers/engine.js';

after(() => cleanupTestResources());

/**
 * Issue 26 point 5: the git sbx runs on the host (`sbx rm --worktree`'s status and worktree removal)
 * runs nothing a sandbox planted. Each case plants, from inside a --branch sandbox (as the agent user
 * and as root), configuration whose commands touch a marker file in a host folder the sandbox cannot
 * see; sbx's own git then runs on the host and no marker may appear.
 */

const git = hostGit;

/** A config whose every command touches a marker in M, and hooks that do the same, in folder E. */
const evilConfig = (e: string, m: string) => `
mkdir -p ${e}/hooks
for h in pre-commit post-checkout post-commit reference-transaction post-index-change pre-auto-gc; do
  printf '#!/bin/sh\\ntouch ${m}/hook-%s\\n' $h > ${e}/hooks/$h; chmod +x ${e}/hooks/$h
done
cat > ${e}/config <<EOF
[core]
	repositoryformatversion = 0
	bare = false
	fsmonitor = "touch ${m}/fsmonitor; false"
	hooksPath = ${e}/hooks
	pager = "touch ${m}/pager; cat"
	sshCommand = "touch ${m}/ssh"
[filter "evil"]
	clean = "touch ${m}/filter-clean; cat"
	smudge = "touch ${m}/filter-smudge; cat"
[diff]
	external = "touch ${m}/diff-external"
EOF
echo '* filter=evil' > .gitattributes
echo changed >> README
`;

/** The planted git folder E: the real objects and refs (so git accepts it) with the evil config. */
const plantCommondir = (m: string) => `set -e
C=$(git rev-parse --path-format=absolute --git-common-dir)
G=$(git rev-parse --path-format=absolute --git-dir)
E=$PWD/.evil
mkdir -p $E
for x in objects refs packed-refs logs worktrees info; do [ -e $C/$x ] && ln -s $C/$x $E/$x || true; done
cp $C/HEAD $E/HEAD
${evilConfig('$E', m)}
printf '%s\\n' "$E" > $G/commondir
echo planted
`;

/** The worktree's .git file redirected to a git folder of the sandbox's own, whose common dir is E. */
const plantGitfile = (m: string) => `set -e
C=$(git rev-parse --path-format=absolute --git-common-dir)
G=$(git rev-parse --path-format=absolute --git-dir)
E=$PWD/.evil
mkdir -p $E $PWD/.evilwt
for x in objects refs packed-refs logs worktrees info; do [ -e $C/$x ] && ln -s $C/$x $E/$x || true; done
cp $C/HEAD $E/HEAD
cp $G/HEAD $G/index $PWD/.evilwt/
printf '%s\\n' "$E" > $PWD/.evilwt/commondir
printf '%s\\n' "$PWD/.git" > $PWD/.evilwt/gitdir
${evilConfig('$E', m)}
# (read-only with private history: refused here, the rest is still planted)
printf 'gitdir: %s\\n' "$PWD/.evilwt" > .git 2>/dev/null || echo 'the .git file is read-only'
echo planted
`;

describe("sbx's host-side git runs nothing a sandbox wrote", { timeout: 900_000 }, () => {
  const cases: Array<[string, (m: string) => string]> = [
    ['a rewritten worktree commondir', plantCommondir],
    ['a redirected worktree .git file', plantGitfile],
  ];
  for (const [what, plant] of cases)
    for (const asRoot of [false, true])
      it(`${what} (fsmonitor, hooksPath, filter, pager, diff.external) planted as ${asRoot ? 'root' : 'the agent user'}: sbx rm --worktree runs none of it`, async () => {
        const repo = await repository();
        const branch = `evil-${asRoot ? 'root' : 'agent'}`;
        const made = await sbx(['create', 'shell', '--branch', branch], { cwd: repo });
        assert.equal(made.code, 0, made.stderr);
        const wt = join(dirname(repo), `${basename(repo)}.worktrees`, branch);
        // A host folder the sandbox does not see: only the planted commands run on the host could touch it.
        const markers = mkdtempSync(join(tmpdir(), 'sbx-marker-'));
        const planted = await sbx([
          'exec',
          ...(asRoot ? ['-u', 'root'] : []),
          wt,
          '--',
          'sh',
          '-c',
          plant(markers),
        ]);
        assert.equal(planted.code, 0, planted.stderr);
        assert.match(planted.stdout, /planted/);
        assert.equal((await sbx(['stop', wt])).code, 0);

        const refused = await sbx(['rm', '--worktree', wt]);
        assert.notEqual(refused.code, 0, 'the planted files are uncommitted work (or a redirect): refused');
        assert.deepEqual(
          readdirSync(markers),
          [],
          `rm --worktree ran what the sandbox planted:\n${refused.stderr}`,
        );

        const forced = await sbx(['rm', '-f', '--worktree', wt]);
        assert.deepEqual(
          readdirSync(markers),
          [],
          `rm -f --worktree ran what the sandbox planted:\n${forced.stderr}`,
        );
        assert.equal(forced.code, 0, forced.stderr);
        assert.ok(!existsSync(join(wt, 'README')), 'the worktree is gone');
        assert.ok(
          git(repo, 'rev-parse', '--verify', '--quiet', `refs/heads/${branch}`).length > 0,
          'the branch stays',
        );
      });
});
