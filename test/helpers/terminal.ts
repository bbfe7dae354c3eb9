import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';

/** Whether tmux is here (test/run.sh installs it): the interactive tests drive a real terminal with it. */
export const hasTmux = (() => {
  try {
    execFileSync('tmux', ['-V']);
    return true;
  } catch {
    return false;
  }
})();

/** The skip reason of a terminal test where tmux is missing. */
export const NO_TMUX = hasTmux ? false : 'tmux is installed by test/run.sh';

/**
 * A tmux server of the test's own (on its own socket), whose session `main` is the terminal a user
 * would type in: send lines and keys, read the screen, wait for something to show.
 */
export function terminal(socket: string) {
  const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args]).toString();
  /** The screen and its scrollback (`joined`: lines the terminal wrapped made whole again). */
  const screen = (joined = false) =>
    tmux('capture-pane', '-p', ...(joined ? ['-J'] : []), '-t', 'main', '-S', '-200');
  const type = (text: string) => tmux('send-keys', '-t', 'main', '-l', text);
  const key = (name: string) => tmux('send-keys', '-t', 'main', name);
  const line = (text: string) => {
    type(text);
    key('Enter');
  };
  const waitFor = async (pattern: RegExp, timeoutMs = 60_000, joined = false): Promise<string> => {
    for (const deadline = Date.now() + timeoutMs; ; ) {
      const text = screen(joined);
      if (pattern.test(text)) return text;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${pattern} on the screen:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** A shell in `cwd`, `columns` x `rows`, as session `main`. */
  const open = (cwd: string, columns = 100, rows = 30) =>
    tmux(
      'new-session',
      '-d',
      '-s',
      'main',
      '-x',
      String(columns),
      '-y',
      String(rows),
      '-c',
      cwd,
      'bash --norc --noprofile',
    );
  const kill = () => {
    try {
      tmux('kill-server');
    } catch {}
  };
  return { tmux, screen, type, key, line, waitFor, open, kill };
}
