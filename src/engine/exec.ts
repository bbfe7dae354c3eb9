import type { Readable, Writable } from 'node:stream';
import { track } from './call.js';
import { api, hijack, query } from './http.js';

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
  const { Id: id } = await track(`create exec in ${short}`, () =>
    api<{ Id: string }>('POST', `/containers/${encodeURIComponent(req.containerId)}/exec`, {
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
  const stream = await track(`start exec in ${short}`, () =>
    hijack(`/exec/${id}/start`, { Detach: false, Tty: req.tty }),
  );

  const finished = new Promise<void>((resolve) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', () => resolve());
  });

  if (req.tty) stream.pipe(req.stdout, { end: false });
  else demux(stream, req.stdout, req.stderr);

  let unsubscribe = () => {};
  if (req.tty && req.size) {
    const resize = () => {
      const { rows, columns } = req.size!();
      if (rows > 0 && columns > 0)
        api('POST', `/exec/${id}/resize?${query({ h: rows, w: columns })}`).catch(() => {});
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
  return exitCodeOf(id);
}

/**
 * Splits the engine's multiplexed stream (no TTY): frames of an 8-byte header (stream 1 stdout, 2
 * stderr, then the length) and the payload.
 */
export function demux(stream: Readable, stdout: Writable, stderr: Writable): void {
  let pending: Buffer = Buffer.alloc(0);
  stream.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    while (pending.length >= 8) {
      const size = pending.readUInt32BE(4);
      if (pending.length < 8 + size) break;
      const payload = pending.subarray(8, 8 + size);
      (pending[0] === 2 ? stderr : stdout).write(payload);
      pending = pending.subarray(8 + size);
    }
  });
}

/** The exit code from exec inspect; the stream can end a moment before the engine records it. */
async function exitCodeOf(id: string): Promise<number> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const info = await track('inspect exec', () =>
      api<{ Running: boolean; ExitCode: number | null }>('GET', `/exec/${id}/json`),
    );
    if (!info.Running || Date.now() > deadline) return info.ExitCode ?? 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Runs a command as root in a running container without a terminal (sbx's own containers, and the
 * sync's work in a sandbox). Its stdout and stderr go to the streams given, else they are captured
 * (up to `limit` bytes each: the output of a sandbox is not the host's memory to fill) and returned;
 * `stdin` feeds it.
 */
export async function execCapture(
  containerId: string,
  cmd: string[],
  streams: { stdin?: Readable; stdout?: Writable; stderr?: Writable } = {},
  /** At most this many bytes of each captured stream are kept (`overflow` says more came). */
  limit = 64 << 20,
): Promise<{ code: number; stdout: string; stderr: string; overflow: boolean }> {
  const { PassThrough } = await import('node:stream');
  const captured = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  const sizes = { stdout: 0, stderr: 0 };
  let overflow = false;
  const capture = (name: 'stdout' | 'stderr') =>
    new PassThrough().on('data', (d: Buffer) => {
      if (sizes[name] + d.length > limit) overflow = true;
      else {
        captured[name].push(d);
        sizes[name] += d.length;
      }
    });
  const code = await execAttached({
    containerId,
    cmd,
    user: '0:0',
    env: [],
    workdir: '/',
    tty: false,
    ...(streams.stdin ? { stdin: streams.stdin } : {}),
    stdout: streams.stdout ?? capture('stdout'),
    stderr: streams.stderr ?? capture('stderr'),
  });
  return {
    code,
    stdout: Buffer.concat(captured.stdout).toString(),
    stderr: Buffer.concat(captured.stderr).toString(),
    overflow,
  };
}
