import type { Duplex, Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import { call } from './call.js';
import { engine } from './connection.js';

export interface TerminalSize {
  rows: number;
  columns: number;
}

export interface ExecRequest {
  containerId: string;
  cmd: string[];
  user: string;
  env: string[];
  workdir: string;
  /** Allocate a TTY (the caller puts its own terminal in raw mode). */
  tty: boolean;
  /** Forwarded to the process; its end closes the process's stdin. Omit for no stdin. */
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /** With a TTY: the size now, and a subscription to changes (returns an unsubscribe). */
  size?: () => TerminalSize;
  onResize?: (listener: () => void) => () => void;
}

/**
 * Runs a command in a container with its streams attached and returns its exit code. Values in
 * `env` live only in this exec: the engine does not store them in the container's configuration.
 */
export async function execAttached(req: ExecRequest): Promise<number> {
  const short = req.containerId.slice(0, 12);
  const exec = await call(`create exec in ${short}`, (docker) =>
    docker.getContainer(req.containerId).exec({
      AttachStdin: req.stdin !== undefined,
      AttachStdout: true,
      AttachStderr: true,
      Cmd: req.cmd,
      Env: req.env,
      Tty: req.tty,
      User: req.user,
      WorkingDir: req.workdir,
    }),
  );
  const stream = (await call(`start exec in ${short}`, () =>
    exec.start({ hijack: true, stdin: req.stdin !== undefined, Tty: req.tty }),
  )) as Duplex;

  const finished = new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });

  if (req.tty) {
    stream.pipe(req.stdout, { end: false });
  } else {
    const { docker } = await engine();
    docker.modem.demuxStream(stream, req.stdout, req.stderr);
  }

  let unsubscribe = () => {};
  if (req.tty && req.size) {
    const resize = () => {
      const { rows, columns } = req.size!();
      if (rows > 0 && columns > 0) exec.resize({ h: rows, w: columns }).catch(() => {});
    };
    resize();
    if (req.onResize) unsubscribe = req.onResize(resize);
  }

  if (req.stdin) req.stdin.pipe(stream);

  try {
    await finished;
  } finally {
    unsubscribe();
    if (req.stdin) {
      req.stdin.unpipe(stream);
      req.stdin.pause();
    }
  }
  return exitCodeOf(exec);
}

/** The exit code from exec inspect; the stream can end a moment before the engine records it. */
async function exitCodeOf(exec: Docker.Exec): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const info = await call('inspect exec', () => exec.inspect());
    if (!info.Running || Date.now() > deadline) return info.ExitCode ?? 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Runs a command in a running container without a terminal and returns its exit code and stdout. */
export async function execCapture(
  containerId: string,
  cmd: string[],
): Promise<{ code: number; stdout: string }> {
  const { PassThrough } = await import('node:stream');
  const out = new PassThrough();
  let stdout = '';
  out.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  const code = await execAttached({
    containerId,
    cmd,
    user: '0:0',
    env: [],
    workdir: '/',
    tty: false,
    stdout: out,
    stderr: new PassThrough(),
  });
  return { code, stdout };
}
