/**
 * Reading files that a sandbox can write (the workspace) from the host: the path is resolved and
 * checked inside the workspace's real path, the file is opened without following a symlink, and the
 * file actually opened is checked again (its /proc/self/fd link), so a rename or a symlink swapped in
 * from inside between the check and the read cannot make sbx read a host file.
 */
import {
  closeSync,
  constants,
  createReadStream,
  fstatSync,
  openSync,
  readFileSync,
  readlinkSync,
  realpathSync,
} from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { SbxError } from './errors.js';

/** Files sbx reads to configure a sandbox are small; anything larger is refused, not read. */
const MAX_BYTES = 4 * 1024 * 1024;

/** Whether `path` is `root` or below it (both canonical). */
export const isInside = (root: string, path: string): boolean => {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

export const outsideError = (what: string, path: string, workspace: string) =>
  new SbxError(
    'usage',
    `${what} ${path} is outside the workspace ${workspace} (symlinks resolved); sbx reads no host file for a sandbox from outside it. Nothing was created.`,
    {
      hint: 'Keep the dev container, its Dockerfile, build context, compose files and features inside the workspace (copy them in, not symlinks), or make the sandbox on the folder that holds them.',
    },
  );

/**
 * The real path of `path` (relative to the workspace, or absolute), which must be inside the
 * workspace's real path; throws an error naming `what` otherwise. Undefined when it does not exist.
 */
export function realInside(workspace: string, path: string, what: string): string | undefined {
  const root = realpathSync(workspace);
  let real: string;
  try {
    real = realpathSync(resolve(workspace, path));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!isInside(root, real)) throw outsideError(what, resolve(workspace, path), workspace);
  return real;
}

/** Opens a file inside the workspace without following a symlink at its end, checked by what was opened. */
function openInside(workspace: string, path: string, what: string): number | undefined {
  const root = realpathSync(workspace);
  const full = resolve(workspace, path);
  let fd: number;
  try {
    fd = openSync(full, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'ELOOP')
      throw new SbxError(
        'usage',
        `${what} ${full} is a symlink; sbx reads it only as a file of the workspace. Nothing was created.`,
        { hint: 'Replace the symlink with the file itself.' },
      );
    throw err;
  }
  try {
    const opened = readlinkSync(`/proc/self/fd/${fd}`);
    if (!isInside(root, opened)) throw outsideError(what, full, workspace);
    if (!fstatSync(fd).isFile())
      throw new SbxError('usage', `${what} ${full} is not a regular file. Nothing was created.`);
    return fd;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/**
 * A workspace file's bytes, read once (what is checked is what is used): undefined when absent; an
 * error when it is a symlink, not a regular file, outside the workspace or too large.
 */
export function readInside(workspace: string, path: string, what: string): Buffer | undefined {
  const fd = openInside(workspace, path, what);
  if (fd === undefined) return undefined;
  try {
    if (fstatSync(fd).size > MAX_BYTES)
      throw new SbxError(
        'usage',
        `${what} ${resolve(workspace, path)} is larger than ${MAX_BYTES / 1024 / 1024} MiB. Nothing was created.`,
      );
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * A read stream for tar-fs's `fs` option: each file of a build context is opened as readInside does,
 * so a file swapped for a symlink (or a folder renamed away) while the context is sent is refused.
 */
export function insideReadStream(
  workspace: string,
): (path: string, options?: { start?: number; end?: number }) => NodeJS.ReadableStream {
  return (path, options) => {
    try {
      const fd = openInside(workspace, path, 'The build context file');
      if (fd === undefined)
        throw new SbxError('notFound', `The build context file ${path} vanished while it was sent.`);
      return createReadStream('', { ...options, fd });
    } catch (err) {
      // Failed as a stream: tar-fs ends the pack with the error, and the build with it.
      const failed = new PassThrough();
      process.nextTick(() => failed.destroy(err as Error));
      return failed;
    }
  };
}
