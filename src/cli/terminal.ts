import type { TerminalSize } from '../engine/exec.js';

export interface Terminal {
  size(): TerminalSize;
  onResize(listener: () => void): () => void;
}

const SIGNALS = ['SIGTERM', 'SIGHUP'] as const;

/**
 * Runs fn with the terminal in raw mode when stdin and stdout are both terminals (keys, Ctrl-C
 * included, go to the sandbox), and restores it on every way out: return, throw, or a signal.
 * Without a terminal (or when not enabled) fn gets undefined and nothing is changed.
 */
export async function withTerminal<T>(
  fn: (terminal: Terminal | undefined) => Promise<T>,
  enabled = true,
  /** False when the caller handles SIGTERM and SIGHUP itself (and exits): the terminal is only restored. */
  exitOnSignal = true,
): Promise<T> {
  const { stdin, stdout } = process;
  if (!enabled || !stdin.isTTY || !stdout.isTTY) return fn(undefined);

  const wasRaw = stdin.isRaw;
  const restore = () => {
    if (stdin.isTTY) stdin.setRawMode(wasRaw);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    restore();
    if (exitOnSignal) process.exit(128 + (signal === 'SIGHUP' ? 1 : 15));
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', restore);
  stdin.setRawMode(true);
  try {
    return await fn({
      size: () => ({ rows: stdout.rows, columns: stdout.columns }),
      onResize: (listener) => {
        stdout.on('resize', listener);
        return () => stdout.off('resize', listener);
      },
    });
  } finally {
    restore();
    stdin.pause();
    for (const s of SIGNALS) process.off(s, onSignal);
    process.off('exit', restore);
  }
}

/**
 * A secret's value from standard input: all of it (one final newline dropped) when piped; on a
 * terminal, one line typed without echo.
 */
export async function readSecretInput(name: string): Promise<string> {
  const { stdin, stderr } = process;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks)
      .toString('utf8')
      .replace(/\r?\n$/, '');
  }
  stderr.write(`Value of ${name} (not shown): `);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      stdin.on('data', (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return resolve(value);
          if (ch === '\u0003') return reject(new Error('interrupted'));
          if (ch === '\u007f') value = value.slice(0, -1);
          else value += ch;
        }
      });
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    stderr.write('\n');
  }
}
