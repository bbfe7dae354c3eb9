/**
 * The two halves of a workspace sync that touch files: scanning a tree into a manifest, and
 * committing files that arrived in a staging folder. The same code runs on the host and, sent as
 * the source of `node -e`, inside the sandbox: so it imports nothing but node's own modules.
 */
import { createHash } from 'node:crypto';
import {
  chownSync,
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readlinkSync,
  readSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';

/** Where files arrive before they are renamed into place; never synced itself. */
export const STAGING = '.sbx-sync.tmp';

/** Size and mtime (whole milliseconds): while they stay, a file's content is taken as unchanged. */
export interface Stat {
  size: number;
  mtimeMs: number;
}

/** What a path is on one side: `id` says its content (kind, executable bit, hash), stats say when to rehash. */
export interface FileState extends Stat {
  id: string;
}

export type Tree = Record<string, FileState>;

/**
 * gitignore-style patterns (a subset): `name` or `*.log` match at any depth, a pattern with a slash
 * (`/build`, `docs/*.pdf`) from the root, a trailing slash only folders; `*`, `?` and `**` globs.
 */
export function ignoreMatcher(patterns: readonly string[]): (path: string, isDir: boolean) => boolean {
  const rules = patterns
    .map((p) => p.trim())
    .filter((p) => p && !p.startsWith('#'))
    .map((p) => {
      const dirOnly = p.endsWith('/');
      const body = p.replace(/\/+$/, '');
      const anchored = body.includes('/');
      return { dirOnly, anchored, re: globToRegExp(body.replace(/^\.?\//, '')) };
    });
  return (path, isDir) =>
    rules.some(
      (r) => (!r.dirOnly || isDir) && r.re.test(r.anchored ? path : path.slice(path.lastIndexOf('/') + 1)),
    );
}

/** A glob over a relative path: `*` and `?` within a segment, `**` across segments. */
function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('/')
    .map((part) =>
      part === '**'
        ? '.*'
        : part
            .replace(/[.+^${}()|[\]\\]/g, '\\$&')
            .replace(/\*/g, '[^/]*')
            .replace(/\?/g, '[^/]'),
    )
    .join('/');
  return new RegExp(`^${body}$`);
}

function hashFile(path: string): string {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, 'r');
  try {
    for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/**
 * Every file, symlink and folder under `root` (relative, `/`-separated), except excluded ones, names
 * with control characters, and the staging folder. A file whose size and mtime match `known` keeps its known id (no hashing).
 */
export function scanTree(root: string, known: Tree, exclude: readonly string[]): Tree {
  const ignored = ignoreMatcher(exclude);
  // No prototype: a file named __proto__ is a key like any other.
  const tree: Tree = Object.create(null);
  const walk = (dir: string, prefix: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const rel = prefix + entry.name;
      // Names with control characters (a newline, ...) are never synced: the other side refuses them.
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is skipped
      if (rel === STAGING || /[\u0000-\u001f\u007f]/.test(entry.name)) continue;
      const full = join(dir, entry.name);
      const isDir = entry.isDirectory();
      if (ignored(rel, isDir)) continue;
      if (isDir) {
        tree[rel] = { id: 'dir', size: 0, mtimeMs: 0 };
        walk(full, `${rel}/`);
      } else if (entry.isSymbolicLink()) {
        tree[rel] = { id: `link:${readlinkSync(full)}`, size: 0, mtimeMs: 0 };
      } else if (entry.isFile()) {
        const st = lstatSync(full);
        const mtimeMs = Math.floor(st.mtimeMs);
        const before = known[rel];
        const exec = st.mode & 0o111 ? 'x' : '-';
        const id =
          before &&
          before.size === st.size &&
          before.mtimeMs === mtimeMs &&
          before.id.startsWith(`file${exec}`)
            ? before.id
            : `file${exec}:${hashFile(full)}`;
        tree[rel] = { id, size: st.size, mtimeMs };
      }
    }
  };
  walk(root, '');
  return tree;
}

/** Refuses a path from the other side of a sync (the sandbox's scan or archive, or a racing rename here). */
export class PathRefused extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${JSON.stringify(path)}: ${reason}`);
    this.name = 'PathRefused';
  }
}

/**
 * Why a relative path from the other side cannot name a file in the workspace, or undefined when it
 * can: a non-empty `/`-separated path of at most 4,096 bytes whose segments are names (not empty,
 * `.` or `..`, at most 255 bytes), without control characters (NUL, newline, ...).
 */
export function pathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string' || path === '') return 'not a path';
  if (Buffer.byteLength(path) > 4096) return 'longer than 4,096 bytes';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'a control character (NUL, newline, ...) in the name';
  if (path.startsWith('/')) return 'an absolute path';
  for (const segment of path.split('/')) {
    if (segment === '') return 'an empty segment (//, or a trailing /)';
    if (segment === '.' || segment === '..') return `a "${segment}" segment`;
    if (Buffer.byteLength(segment) > 255) return 'a name longer than 255 bytes';
  }
  return undefined;
}

/**
 * `root/rel` for a write there, checked right before it: the path is a plain relative path
 * (pathProblem), every folder on the way that exists is a real folder (no symlink, no file), and the
 * deepest existing one resolves inside root. Called before each rename, mkdir and removal, so a
 * folder swapped for a symlink meanwhile is caught at the write it would redirect.
 */
export function insideRoot(root: string, rel: string): string {
  const problem = pathProblem(rel);
  if (problem) throw new PathRefused(rel, problem);
  const parts = rel.split('/');
  let dir = root;
  let existing = root;
  for (const part of parts.slice(0, -1)) {
    dir = join(dir, part);
    const st = lstatSync(dir, { throwIfNoEntry: false });
    if (!st) break;
    if (!st.isDirectory())
      throw new PathRefused(
        rel,
        `${relative(root, dir)} on the way is ${st.isSymbolicLink() ? 'a symlink' : 'not a folder'}`,
      );
    existing = dir;
  }
  const real = realpathSync(existing);
  const realRoot = realpathSync(root);
  if (real !== realRoot && !real.startsWith(realRoot + sep))
    throw new PathRefused(rel, 'outside the workspace');
  return join(root, rel);
}

/**
 * The whole commit checked before anything is written: every path a plain relative one, and every
 * folder on the way to a file, link or removal either made by this commit or a real folder inside
 * root now (a symlink or file there is refused, whatever the plan says about it).
 */
export function checkCommit(commit: Pick<Commit, 'root' | 'files' | 'dirs' | 'deletes'>): void {
  const made = new Set(commit.dirs);
  for (const path of [...commit.dirs, ...commit.files, ...commit.deletes]) {
    const problem = pathProblem(path);
    if (problem) throw new PathRefused(path, problem);
    const parts = path.split('/');
    let checkFrom = '';
    for (let i = parts.length - 1; i > 0; i--) {
      const parent = parts.slice(0, i).join('/');
      if (!made.has(parent)) {
        checkFrom = parent;
        break;
      }
    }
    // Folders the commit makes are checked as paths themselves; the rest must be real folders here.
    if (checkFrom) insideRoot(commit.root, `${checkFrom}/x`);
  }
}

export interface Commit {
  root: string;
  /** Files and links that arrived in root/STAGING, renamed into place (parents first). */
  files: string[];
  /** Folders to create (empty ones included). */
  dirs: string[];
  /** Paths to remove: files, links, and folders once empty (deepest first). */
  deletes: string[];
  /** Owner of the folders created (the sandbox user); undefined leaves them to the caller. */
  owner?: { uid: number; gid: number } | undefined;
}

/**
 * Moves staged files into place, one rename each (so a reader never sees half a file, and a commit
 * cut short leaves every file either old or new), makes folders, removes deleted paths, then the
 * staging folder. Returns the stats of what was placed.
 */
export function commitTree(commit: Commit): Record<string, Stat> {
  const { root, owner } = commit;
  // A new volume's root belongs to root: the sandbox user gets it.
  if (owner && statSync(root).uid !== owner.uid) chownSync(root, owner.uid, owner.gid);
  const placed: Record<string, Stat> = {};
  const mkdirs = (dir: string) => {
    const first = mkdirSync(dir, { recursive: true });
    if (first && owner) {
      for (let d = dir; d.length >= first.length; d = dirname(d)) chownSync(d, owner.uid, owner.gid);
    }
  };
  const clear = (path: string) => {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory()) rmSync(path, { recursive: true, force: true });
  };
  for (const dir of [...commit.dirs].sort()) {
    const full = insideRoot(root, dir);
    const st = lstatSync(full, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) unlinkSync(full);
    mkdirs(full);
  }
  for (const file of [...commit.files].sort()) {
    insideRoot(root, file);
    const staged = insideRoot(join(root, STAGING), file);
    if (!lstatSync(staged, { throwIfNoEntry: false }))
      throw new PathRefused(file, 'did not arrive (changed while it was copied?); sync again');
    mkdirs(dirname(join(root, file)));
    // Checked again after the folders were made, right before the rename.
    const full = insideRoot(root, file);
    clear(full);
    renameSync(staged, full);
    const st = lstatSync(full);
    placed[file] = {
      size: st.isSymbolicLink() ? 0 : st.size,
      mtimeMs: st.isSymbolicLink() ? 0 : Math.floor(st.mtimeMs),
    };
  }
  for (const path of [...commit.deletes].sort().reverse()) {
    const full = insideRoot(root, path);
    const st = lstatSync(full, { throwIfNoEntry: false });
    if (!st) continue;
    try {
      if (st.isDirectory()) rmdirSync(full);
      else unlinkSync(full);
    } catch {
      // A folder that is not empty (something new in it) stays.
    }
  }
  rmSync(join(root, STAGING), { recursive: true, force: true });
  return placed;
}

/** Empties the staging folder (what an interrupted sync left there) and makes it anew. */
export function prepareStaging(root: string): void {
  const staging = join(root, STAGING);
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
}

/** Inside the sandbox: `node -e <this file> sbx-sync-tool` with the request as JSON on stdin. */
async function main(): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  const req = JSON.parse(Buffer.concat(chunks).toString());
  let result: unknown;
  if (req.op === 'scan') {
    mkdirSync(req.root, { recursive: true });
    result = scanTree(req.root, req.known, req.exclude);
  } else if (req.op === 'commit') result = commitTree(req);
  process.stdout.write(JSON.stringify(result ?? null));
}

if (process.argv[1] === 'sbx-sync-tool') {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
