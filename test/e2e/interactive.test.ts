import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { BIN, PROXY, RUN_ID, STATE_PREFIX, TEST_LABEL, workspace } from '../helpers/cli.js';
import { cleanupTestResources, containersOf } from '../helpers/engine.js';
import { NO_TMUX, terminal } from '../helpers/terminal.js';

const { tmux, screen, key, line, waitFor, open, kill } = terminal(`sbx-test-${process.pid}`);

/**
 * Types a command until its output shows: a tmux client that has just attached swallows keys that
 * arrive while it is still asking the terminal about itself.
 */
async function typeUntil(command: string, pattern: RegExp): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    line(command);
    try {
      return await waitFor(pattern, 2_000);
    } catch (err) {
      if (attempt === 10) throw err;
    }
  }
}

after(async () => {
  kill();
  await cleanupTestResources();
});

describe('sbx run shell on a terminal', {
  skip: NO_TMUX,
  timeout: 300_000,
}, () => {
  it('forwards keys, follows resizes, sends Ctrl-C to the sandbox, exits with its code and restores the terminal', async () => {
    const ws = await workspace();
    open(ws, 100, 30);
    line(
      `export PS1='host$ ' SBX_LABELS=${TEST_LABEL}=${RUN_ID} SBX_STATE_PREFIX=${STATE_PREFIX} SBX_PROXY_NAME=${PROXY}; stty -g > ../before-${RUN_ID}`,
    );
    line(`node ${BIN} run shell`);
    await waitFor(/@[0-9a-f]{12}:/); // the sandbox's bash prompt (hostname = container id)
    line('echo $((6 * 7))');
    await waitFor(/^42$/m);
    line('stty size');
    await waitFor(/^30 100$/m);
    tmux('resize-window', '-t', 'main', '-x', '120', '-y', '40');
    line('stty size');
    await waitFor(/^40 120$/m);
    line('sleep 60; echo NOT-INTERRUPTED');
    await new Promise((r) => setTimeout(r, 500));
    key('C-c');
    line('echo still-$((1 + 1))-inside');
    await waitFor(/^still-2-inside$/m);
    assert.doesNotMatch(screen(), /^NOT-INTERRUPTED$/m);
    line('exit 3');
    await waitFor(/logout\s*\nhost\$/);
    line(
      `echo SBX_EXIT=$?; stty -g > ../after-${RUN_ID}; cmp ../before-${RUN_ID} ../after-${RUN_ID} && echo TERMINAL-RESTORED`,
    );
    const final = await waitFor(/TERMINAL-RESTORED|differ/);
    assert.match(final, /SBX_EXIT=3/);
    assert.match(final, /TERMINAL-RESTORED/);
  });

  it('sbx run attaches to the agent that sbx run -d started in the background', async () => {
    const ws = await workspace();
    line(`cd ${ws} && clear`);
    line(`node ${BIN} run shell -d -- sh -c 'echo DETACHED-MARK; exec bash --norc'`);
    await waitFor(/runs in the background of sbx-/);
    line(`node ${BIN} run shell`);
    await waitFor(/DETACHED-MARK[\s\S]*\[sbx-shell/); // the session, with the sandbox tmux's status line
    await typeUntil('echo attached-$((2 * 21))', /^attached-42$/m);
    tmux('send-keys', '-t', 'main', 'C-b', 'd'); // the sandbox's tmux prefix: detach, the agent keeps running
    await waitFor(/\[detached/);
    line('clear; echo BACK-ON-HOST');
    await waitFor(/^BACK-ON-HOST$/m);
    line(`node ${BIN} run shell`);
    await waitFor(/^attached-42$/m); // the same session, still running
    tmux('send-keys', '-t', 'main', 'C-b', 'd');
    await waitFor(/\[detached/);
  });

  it('rm --all asks once on a terminal, and "no" removes nothing', async () => {
    const ws = await workspace();
    line(`cd ${ws} && node ${BIN} create shell && clear`);
    await waitFor(/^host\$\s*$/m);
    line(`node ${BIN} rm --all`);
    await waitFor(/Remove all \d+ sandboxes.*Workspace files and agent logins stay\. \[y\/N\]/);
    line('n');
    await waitFor(/nothing removed/);
    assert.equal((await containersOf(ws)).length, 1);
  });
});
