/**
 * Two-way sync of a workspace with its copy in a sandbox's volume, for engines that cannot see the
 * host's files (remote ones). Both sides are scanned into manifests (hashes, reused while size and
 * mtime stay), compared with what both held at the last sync, and only what changed travels: to the
 * sandbox as a tar (tar-fs) through the engine's archive API, back as a tar streamed from the
 * sandbox. Files land in a staging folder and are renamed into place, so a sync cut short leaves
 * every file whole, and the next one picks up what is still different.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { execCapture } from '../engine/exec.js';
import { putArchive } from '../engine/volumes.js';
import { SbxError } from '../shared/errors.js';
import type { SandboxRecord } from '../shared/labels.js';
import { formatBytes } from '../shared/parse.js';
import { checkScan, type Refusal, type TarHeader, tarEntryProblem } from './check.js';
import { type Conflict, type Direction, isProtected, planSync, type SyncPlan } from './plan.js';
import {
  checkCommit,
  commitTree,
  type FileState,
  PathRefused,
  prepareStaging,
  STAGING,
  type Stat,
  scanTree,
  type Tree,
} from './tree.js';

/** A sandbox whose workspace is synced: its container, workspace and the owner of its files. */
export type SyncTarget = SandboxRecord;

/** Progress lines of a sync: `final` ones say what it did, the others are its progress on a terminal. */
export type SyncReport = (line: string, final: boolean) => void;

export interface SyncOptions {
  direction: Direction;
  prefer?: 'ours' | 'theirs' | undefined;
  /** gitignore-style paths never synced (config sync.exclude, the workspace's denyRead). */
  exclude: string[];
  /** One line of what happened, or progress; none when nothing changed. */
  report?: SyncReport | undefined;
}

export interface SyncResult {
  pushed: number;
  pulled: number;
  removedHere: number;
  removedThere: number;
  /** Bytes of the tar streams that travelled. */
  bytes: number;
  conflicts: Conflict[];
  /** Changed in the sandbox, never copied back (see PROTECTED). */
  protected: string[];
  /** Paths on this host's side (files, links, folders). */
  files: number;
  seconds: number;
}

/** A path as both sides held it at the last sync; a side's stats are absent until it is scanned again. */
interface StateEntry {
  id: string;
  local?: Stat | undefined;
  remote?: Stat | undefined;
}

interface State {
  version: 1;
  entries: Record<string, StateEntry>;
}

const stateDir = (env: NodeJS.ProcessEnv = process.env) =>
  join(env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'sbx', 'sync');

function readState(id: string): State {
  try {
    const state = JSON.parse(readFileSync(join(stateDir(), `${id}.json`), 'utf8')) as State;
    if (state.version === 1) return state;
  } catch {}
  return { version: 1, entries: {} };
}

function writeState(id: string, state: State): void {
  const file = join(stateDir(), `${id}.json`);
  writeFileSync(`${file}.tmp`, JSON.stringify(state));
  renameSync(`${file}.tmp`, file);
}

/** Forgets a removed sandbox's sync state. */
export function forgetSyncState(id: string): void {
  rmSync(join(stateDir(), `${id}.json`), { force: true });
}

/** One sync of a sandbox at a time (a --watch and the end of a run may meet): a lock folder with the pid. */
async function withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(stateDir(), { recursive: true });
  const lock = join(stateDir(), `${id}.lock`);
  for (const deadline = Date.now() + 120_000; ; ) {
    try {
      mkdirSync(lock);
      writeFileSync(join(lock, 'pid'), String(process.pid));
      break;
    } catch {
      let owner = Number.NaN;
      try {
        owner = Number(readFileSync(join(lock, 'pid'), 'utf8'));
      } catch {}
      if (Number.isFinite(owner) && !alive(owner)) rmSync(lock, { recursive: true, force: true });
      else if (Date.now() > deadline)
        throw new SbxError(
          'conflict',
          `Another sbx (pid ${owner}) has been syncing this sandbox for two minutes.`,
          {
            hint: `Wait for it, or stop it; if no sbx runs, remove ${lock}.`,
          },
        );
      else await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as { code?: string }).code === 'EPERM';
  }
}

let toolSource: Promise<string> | undefined;

/** The largest answer a scan in the sandbox may give (about 2 million paths). */
const MAX_SCAN_BYTES = 256 << 20;

/**
 * Runs tree.ts inside the sandbox (as root): the request as JSON on stdin, the answer as JSON. Root
 * inside can replace what runs there, so the answer is unchecked: the caller checks it.
 */
async function sandboxTool(target: SyncTarget, request: object): Promise<unknown> {
  toolSource ??= readFile(new URL('./tree.js', import.meta.url), 'utf8');
  const op = (request as { op: string }).op;
  const { code, stdout, stderr, overflow } = await execCapture(
    target.id,
    ['node', '--input-type=module', '-e', await toolSource, 'sbx-sync-tool'],
    { stdin: Readable.from([JSON.stringify(request)]) },
    MAX_SCAN_BYTES,
  );
  if (code !== 0)
    throw new SbxError(
      'internal',
      `Syncing files in the sandbox failed (${op}): ${stderr.trim().slice(0, 2000) || `exit ${code}`}.`,
    );
  if (overflow)
    throw refusedError(target, [
      { path: '', reason: `its ${op} answered more than ${formatBytes(MAX_SCAN_BYTES)}` },
    ]);
  try {
    return JSON.parse(stdout) as unknown;
  } catch {
    throw refusedError(target, [{ path: '', reason: `its ${op} did not answer JSON` }]);
  }
}

/**
 * A sync refused because the sandbox's side of it is not what a sandbox's files can be: nothing was
 * written on this host (checked before the first write; the staging folder is removed).
 */
function refusedError(target: SyncTarget, refused: Refusal[]): SbxError {
  const shown = refused
    .slice(0, 5)
    .map((r) => (r.path ? `${JSON.stringify(r.path)} (${r.reason})` : r.reason));
  const more = refused.length > shown.length ? `, and ${refused.length - shown.length} more` : '';
  return new SbxError(
    'conflict',
    `The sync with ${target.name} was refused, and nothing was copied here: what the sandbox reported cannot be a file of this workspace: ${shown.join('; ')}${more}.`,
    {
      hint: `Something in the sandbox (as root) altered what the sync runs there, or the files are named in a way sbx does not copy. Look with \`sbx exec ${target.name} -- ls -la\`; remove the sandbox (\`sbx rm ${target.name}\`) if you do not trust it any more.`,
    },
  );
}

const refusalOf = (err: unknown): Refusal[] | undefined =>
  err instanceof PathRefused ? [{ path: err.path, reason: err.reason }] : undefined;

/** What a side held at the last sync, as a tree whose stats let the scan skip unchanged files. */
const knownOf = (state: State, side: 'local' | 'remote'): Tree =>
  Object.fromEntries(
    Object.entries(state.entries).flatMap(([path, e]) => {
      const stat = e[side];
      return stat ? [[path, { ...stat, id: e.id }]] : [];
    }),
  );

/** The host's owner for what sync creates there: the workspace owner, when sbx runs as root for another user. */
function localOwner(workspace: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const st = statSync(workspace);
  return st.uid === 0 ? undefined : { uid: st.uid, gid: st.gid };
}

/** Counts bytes through a stream, for progress. */
function counter(onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}

export async function syncWorkspace(target: SyncTarget, options: SyncOptions): Promise<SyncResult> {
  return withLock(target.id, () => syncLocked(target, options));
}

async function syncLocked(target: SyncTarget, options: SyncOptions): Promise<SyncResult> {
  const started = Date.now();
  const state = readState(target.id);
  const [local, scanned] = await Promise.all([
    Promise.resolve().then(() => scanTree(target.workspace, knownOf(state, 'local'), options.exclude)),
    sandboxTool(target, {
      op: 'scan',
      root: target.workspace,
      known: knownOf(state, 'remote'),
      exclude: options.exclude,
    }),
  ]);
  // Checked before anything travels: a path that cannot be a file of the workspace refuses the sync.
  const { tree: remote, refused } = checkScan(scanned);
  if (refused.length > 0) throw refusedError(target, refused);
  const plan = planSync(state.entries, local, remote, {
    direction: options.direction,
    prefer: options.prefer,
    protect: isProtected,
  });
  const result = resultOf(plan, local);
  if (plan.conflicts.length > 0) throw conflictError(target, plan.conflicts);

  const total =
    plan.push.files.reduce((n, p) => n + (local[p]?.size ?? 0), 0) +
    plan.pull.files.reduce((n, p) => n + (remote[p]?.size ?? 0), 0);
  let last = 0;
  const progress = (n: number) => {
    result.bytes += n;
    if (options.report && Date.now() - last > 250) {
      last = Date.now();
      options.report(`syncing ${target.name}: ${formatBytes(result.bytes)} of ${formatBytes(total)}`, false);
    }
  };
  const pushed = hasWork(plan.push) ? await push(target, plan.push, progress) : {};
  const pulled = hasWork(plan.pull) ? await pull(target, plan.pull, remote, progress) : {};
  writeState(target.id, nextState(state, plan, local, remote, pushed, pulled));
  result.seconds = (Date.now() - started) / 1000;
  const changed = result.pushed + result.pulled + result.removedHere + result.removedThere;
  if (options.report && (changed > 0 || result.protected.length > 0))
    options.report(summary(target, result), true);
  return result;
}

/** What a plan will do, counted (bytes and seconds are filled in as it runs). */
function resultOf(plan: SyncPlan, local: Tree): SyncResult {
  return {
    pushed: plan.push.files.length + plan.push.dirs.length,
    pulled: plan.pull.files.length + plan.pull.dirs.length,
    removedHere: plan.pull.deletes.length,
    removedThere: plan.push.deletes.length,
    bytes: 0,
    conflicts: plan.conflicts,
    protected: plan.protected,
    files: Object.keys(local).length,
    seconds: 0,
  };
}

/** Host to sandbox: the files as one tar into the sandbox's staging folder, then its commit there. */
async function push(
  target: SyncTarget,
  side: SyncPlan['push'],
  progress: (bytes: number) => void,
): Promise<Record<string, Stat>> {
  if (side.files.length > 0) {
    // Into the staging folder (made by the extraction; what an interrupted sync left there is
    // overwritten or cleared by the commit).
    const { pack } = await import('tar-fs');
    const archive = pack(target.workspace, {
      entries: side.files,
      map: (header) => ({ ...header, name: `${STAGING}/${header.name}` }),
    }) as unknown as Readable;
    await putArchive(target.id, target.workspace, archive.pipe(counter(progress)));
  }
  const owner = { uid: target.uid, gid: target.gid };
  // What was placed there: only its sizes and mtimes are used (kept as the sandbox's side's stats).
  const placed = await sandboxTool(target, { op: 'commit', root: target.workspace, owner, ...side });
  const stats: Record<string, Stat> = Object.create(null);
  for (const path of [...side.files, ...side.dirs]) {
    const st = (placed as Record<string, Stat> | null)?.[path];
    if (st && Number.isFinite(st.size) && Number.isFinite(st.mtimeMs))
      stats[path] = { size: st.size, mtimeMs: st.mtimeMs };
  }
  return stats;
}

/** Sandbox to host: the files as one tar from the sandbox into the local staging folder, then the commit here. */
async function pull(
  target: SyncTarget,
  side: SyncPlan['pull'],
  remote: Tree,
  progress: (bytes: number) => void,
): Promise<Record<string, Stat>> {
  const here = localOwner(target.workspace);
  const commit = { root: target.workspace, owner: here, ...side };
  // The whole commit is checked before the first write (staging included): refused, nothing is written.
  try {
    checkCommit(commit);
  } catch (err) {
    throw refusedError(target, refusalOf(err) ?? []);
  }
  prepareStaging(target.workspace);
  const staging = join(target.workspace, STAGING);
  try {
    if (side.files.length > 0) {
      const wanted = new Map(side.files.map((f) => [f, remote[f] ?? { id: '', size: 0 }]));
      const seen = new Set<string>();
      const refused: Refusal[] = [];
      const { extract } = await import('tar-fs');
      const sink = extract(staging, {
        // Each entry is checked (name, type, size) before it is written; a refused one is skipped,
        // and refuses the whole sync below. The owner here is the workspace's, whatever the entry says.
        ignore: (_name: string, header?: TarHeader) => {
          const problem = header ? tarEntryProblem(header, wanted, seen) : 'no header';
          if (problem) refused.push({ path: header?.name ?? '', reason: problem });
          return problem !== undefined;
        },
        map: (header: TarHeader & { uid?: number; gid?: number }) =>
          here ? { ...header, uid: here.uid, gid: here.gid } : header,
        // Symlinks are files like any other here: what they point at is never written through.
        validateSymlinks: false,
        ...(here ? {} : { chown: false }),
      } as object);
      const tarred = counter(progress);
      const done = pipeline(tarred, sink as unknown as NodeJS.WritableStream);
      const { code, stderr } = await execCapture(
        target.id,
        [
          'tar',
          '-C',
          target.workspace,
          '--null',
          '--no-recursion',
          '--hard-dereference',
          '-T',
          '-',
          '-cf',
          '-',
        ],
        { stdin: Readable.from([side.files.map((f) => `${f}\0`).join('')]), stdout: tarred },
      );
      if (!tarred.writableEnded) tarred.end();
      await done.catch((err: Error) => {
        refused.push({ path: '', reason: `the archive is malformed (${err.message})` });
      });
      if (refused.length > 0) throw refusedError(target, refused);
      if (code !== 0)
        throw new SbxError(
          'internal',
          `Reading files from ${target.name} failed: ${stderr.trim().slice(0, 2000)}.`,
        );
    }
    try {
      return commitTree(commit);
    } catch (err) {
      const refusal = refusalOf(err);
      throw refusal ? refusedError(target, refusal) : err;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

const hasWork = (side: SyncPlan['push']) => side.files.length + side.dirs.length + side.deletes.length > 0;

/** What both sides hold after this sync: the new base; paths left pending keep their old one. */
function nextState(
  state: State,
  plan: SyncPlan,
  local: Tree,
  remote: Tree,
  pushed: Record<string, Stat>,
  pulled: Record<string, Stat>,
): State {
  // No prototype: a path named __proto__ is a key like any other.
  const entries: Record<string, StateEntry> = Object.assign(Object.create(null), state.entries);
  const stat = (s: FileState | undefined): Stat | undefined => s && { size: s.size, mtimeMs: s.mtimeMs };
  // (Stats left undefined are dropped when the state is written as JSON.)
  for (const path of plan.same)
    entries[path] = { id: local[path]!.id, local: stat(local[path]), remote: stat(remote[path]) };
  for (const path of [...plan.push.files, ...plan.push.dirs])
    entries[path] = { id: local[path]!.id, local: stat(local[path]), remote: pushed[path] };
  for (const path of [...plan.pull.files, ...plan.pull.dirs])
    entries[path] = { id: remote[path]!.id, local: pulled[path], remote: stat(remote[path]) };
  for (const path of [...plan.push.deletes, ...plan.pull.deletes]) delete entries[path];
  for (const path of Object.keys(entries)) if (!(path in local) && !(path in remote)) delete entries[path];
  return { version: 1, entries };
}

function conflictError(target: SyncTarget, conflicts: Conflict[]): SbxError {
  const shown = conflicts
    .slice(0, 20)
    .map((c) => `${c.path} (here: ${c.local}, in the sandbox: ${c.remote})`);
  const more = conflicts.length > shown.length ? `, and ${conflicts.length - shown.length} more` : '';
  return new SbxError(
    'conflict',
    `${conflicts.length} file${conflicts.length > 1 ? 's' : ''} changed both here and in ${target.name} since the last sync, so nothing was copied: ${shown.join('; ')}${more}.`,
    {
      hint: `Keep this host's versions with \`sbx sync ${target.name} --ours\`, or the sandbox's with \`sbx sync ${target.name} --theirs\` (or copy what you need first: \`sbx exec ${target.name} -- cat FILE\`).`,
    },
  );
}

function summary(target: SyncTarget, r: SyncResult): string {
  const parts = [
    r.pushed ? `${r.pushed} to the sandbox` : '',
    r.pulled ? `${r.pulled} back here` : '',
    r.removedThere ? `${r.removedThere} removed in the sandbox` : '',
    r.removedHere ? `${r.removedHere} removed here` : '',
  ].filter(Boolean);
  const kept = r.protected.length
    ? `; changed in the sandbox and never copied back (git hooks, .git/config and .sbx/ are the host's, whose versions go back there): ${r.protected.join(', ')}`
    : '';
  return `synced ${target.name}: ${parts.join(', ') || 'nothing changed'} (${formatBytes(r.bytes)}, ${r.seconds.toFixed(1)} s)${kept}`;
}
