import assert from 'node:assert/strict';
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { RUN_ID, sbx, TEST_USER, workspace } from '../helpers/cli.js';
import { cleanupTestResources } from '../helpers/engine.js';

/**
 * A synced workspace (`--sync` on the local engine: the sandbox has its own copy in a volume, and
 * sbx copies files both ways with a scan that runs inside). Whoever is root inside controls that
 * scan and the tar that carries files back: here the node binary the host's sync runs is replaced
 * by one that adds hostile paths to the scan's answer. The host must write nothing outside the
 * workspace and never replace `.git/config`; the sync is refused and says why.
 */
const root = process.getuid?.() === 0;

/** Put in place of /usr/bin/node: runs the real one, then adds hostile paths to a scan's answer. */
const HOSTILE_NODE = `#!/usr/bin/node.real
const { spawnSync } = require('node:child_process');
const input = require('node:fs').readFileSync(0);
const r = spawnSync('/usr/bin/node.real', process.argv.slice(2), { input, maxBuffer: 1 << 30 });
let out = r.stdout.toString();
if (input.toString().includes('"op":"scan"') && r.status === 0) {
  const tree = JSON.parse(out);
  const file = { id: 'file-:' + 'a'.repeat(64), size: 6, mtimeMs: 1 };
  tree['../bait'] = file;
  tree['x/../.git/config'] = file;
  // x itself (a symlink out) is left unsaid: only its use in the path above matters.
  delete tree.x;
  out = JSON.stringify(tree);
}
process.stderr.write(r.stderr);
process.stdout.write(out);
process.exitCode = r.status ?? 1;
`;

describe('attack: a synced workspace, the sandbox lies in its scan', {
  skip: root ? false : 'running sbx as the test user needs root (test/run.sh runs as root)',
  timeout: 600_000,
}, () => {
  after(() => cleanupTestResources());

  for (const as of ['the agent user', 'root inside (sudo)']) {
    it(`as ${as}: nothing outside the workspace is written, .git/config stays the host's`, async () => {
      // An ordinary user's workspace and sbx: the agent inside is that user (uid 4242), root only by sudo.
      // In a folder of its own (the user's), which the sync must not write.
      const parent = mkdtempSync(join(tmpdir(), 'sbx-attack-'));
      chownSync(parent, TEST_USER.uid, TEST_USER.gid);
      const ws = await workspace({ owner: TEST_USER, parent });
      const outside = join(parent, 'bait');
      writeFileSync(join(ws, 'kept.txt'), 'host\n');
      chownSync(join(ws, 'kept.txt'), TEST_USER.uid, TEST_USER.gid);
      const config = readFileSync(join(ws, '.git/config'), 'utf8');
      const before = readdirSync(parent).sort();
      const run = (args: string[]) => sbx(args, { cwd: ws, asUser: TEST_USER });
      try {
        // The agent writes `bait` (copied back: an ordinary file), and prepares what the lie points at:
        // /tmp/bait next to the sandbox's copy of the workspace, a folder whose `..` holds a .git/config
        // (reached through the symlink x made with the lie).
        const first = await run([
          'run',
          'shell',
          '--sync',
          '--',
          'sh',
          '-c',
          `echo pwned > bait && sudo sh -c 'echo pwned > ../bait' && mkdir -p /tmp/evil-${RUN_ID}/sub /tmp/evil-${RUN_ID}/.git && printf '[core]\\n\\tfsmonitor = touch /tmp/pwned-${RUN_ID}\\n' > /tmp/evil-${RUN_ID}/.git/config`,
        ]);
        assert.equal(first.code, 0, first.stderr);
        assert.equal(readFileSync(join(ws, 'bait'), 'utf8'), 'pwned\n');

        // The lie: node, which the host's sync runs inside as root, replaced (as root, or tried as the user).
        writeFileSync(join(ws, 'hostile-node'), HOSTILE_NODE);
        chownSync(join(ws, 'hostile-node'), TEST_USER.uid, TEST_USER.gid);
        const sudo = as.startsWith('root') ? 'sudo ' : '';
        const planted = await run([
          'exec',
          '.',
          '--',
          'sh',
          '-c',
          `ln -s /tmp/evil-${RUN_ID}/sub x; ${sudo}cp /usr/bin/node /usr/bin/node.real && ${sudo}cp hostile-node /usr/bin/node && ${sudo}chmod 755 /usr/bin/node; echo planted`,
        ]);
        // The copy back after that command (and any later sync) meets the lie.
        const next = await run(['exec', '.', '--', 'true']);
        const text = planted.stderr + next.stderr;

        assert.ok(!existsSync(outside), `the sync wrote ${outside} (outside the workspace)`);
        assert.deepEqual(readdirSync(parent).sort(), before, 'nothing new next to the workspace');
        assert.equal(readFileSync(join(ws, '.git/config'), 'utf8'), config, '.git/config was replaced');
        assert.ok(!existsSync(join(ws, '.sbx-sync.tmp')), 'the staging folder was left behind');
        assert.equal(readFileSync(join(ws, 'bait'), 'utf8'), 'pwned\n', 'the workspace file stays');
        assert.equal(readFileSync(join(ws, 'kept.txt'), 'utf8'), 'host\n');
        if (sudo) {
          // Refused, and said why: the path and what is wrong with it.
          assert.notEqual(planted.code, 0, planted.stderr);
          assert.match(text, /refused[\s\S]*\.\.\/bait/);
          assert.doesNotMatch(text, /\n\s+at /, 'a stack trace');
        } else {
          // The user cannot replace node: both commands and their syncs work as usual.
          assert.match(planted.stdout, /planted/);
          assert.equal(next.code, 0, next.stderr);
        }
      } finally {
        await run(['rm', '-f', '.']);
        rmSync(parent, { recursive: true, force: true });
      }
    });
  }
});
