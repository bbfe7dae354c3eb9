import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { AGENTS, type AgentSpec, getAgent } from '../agents/registry.js';
import { execAttached, execCapture } from '../engine/exec.js';
import { execEnv, execUser } from '../sandbox/spec.js';
import { SbxError, usageError } from '../shared/errors.js';
import type { SandboxRecord } from '../shared/labels.js';
import type { EnvVar } from '../shared/parse.js';
import { syncProgress } from './progress.js';
import { errorText } from './render.js';
import { withTerminal } from './terminal.js';

export interface ProcessRequest {
  sandbox: SandboxRecord & {
    syncVolume?: string | null | undefined;
    /** Secrets bound to it: the host's values of these variables are never passed in. */
    secrets?: string[] | undefined;
  };
  /** Whose settings and API keys the process gets (shell: none). */
  agent: AgentSpec;
  cmd: string[];
  vars: EnvVar[];
  workdir: string;
  /** -u as typed; by default the workspace owner's identity inside (see execUser). */
  user?: string | undefined;
  /** A TTY: 'auto' when this process has a terminal, true demands one. */
  tty: boolean | 'auto';
  stdin: boolean;
  /** Agent sessions: attach to the background one if it runs, or start it in the background. */
  session?: 'attach' | 'detach';
}

/**
 * Runs a process in a sandbox through sbx-exec (which waits for the sandbox to be ready and prepares
 * the agent) with this terminal attached, and returns its exit code. Variables live only in this
 * process; the container's stored configuration never sees them.
 */
export async function runInSandbox(req: ProcessRequest): Promise<number> {
  const hasTerminal = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  if (req.tty === true && !hasTerminal) {
    throw usageError(
      '-t needs a terminal, and this input is not one.',
      'Drop -t when piping or redirecting.',
    );
  }
  const wantTty = req.session !== 'detach' && (req.tty === true || (req.tty === 'auto' && hasTerminal));
  const owner = execUser(req.sandbox.uid, req.sandbox.gid);
  const detached = req.session === 'detach';
  // A synced workspace: both ways before (what the background agent did comes back too), back after.
  const sync = req.sandbox.syncVolume
    ? (await import('../sandbox/workspace-sync.js')).syncSandbox
    : undefined;
  const report = syncProgress();
  if (sync) {
    try {
      await sync(req.sandbox, 'both', undefined, report);
    } catch (err) {
      // Conflicts are settled with `sbx sync --ours/--theirs`; the command still runs (it may be the look
      // that decides), on the sandbox's copy.
      if (!(err instanceof SbxError && err.kind === 'conflict')) throw err;
      process.stderr.write(`${errorText(err, '', 'Warning')}\n`);
    }
  }
  // Ending sbx ends the command (not one started with -d): see endWithSbx.
  const tag = detached ? undefined : randomBytes(12).toString('hex');
  const stopWatching = tag ? endWithSbx(req.sandbox.id, tag) : () => {};
  const code = await withTerminal(
    async (terminal) =>
      execAttached({
        containerId: req.sandbox.id,
        cmd: ['/usr/local/bin/sbx-exec', ...req.cmd],
        user: req.user ?? owner.user,
        env: execEnv({
          agent: req.agent,
          user: req.user === undefined ? owner : undefined,
          term: terminal ? (process.env.TERM ?? 'xterm-256color') : undefined,
          hostEnv: process.env,
          vars: req.vars,
          bound: req.sandbox.secrets,
          // Joining the background session needs a terminal; without one the command just runs.
          session: req.session === 'attach' && !terminal ? undefined : req.session,
        }).concat(tag ? [`SBX_EXEC_TAG=${tag}`] : []),
        workdir: req.workdir,
        tty: terminal !== undefined,
        ...(req.stdin && !detached ? { stdin: process.stdin } : {}),
        stdout: detached ? process.stderr : process.stdout,
        stderr: process.stderr,
        ...(terminal ? { size: terminal.size, onResize: terminal.onResize } : {}),
      }),
    wantTty,
    // Signals are handled by endWithSbx (which restores the terminal through the exit handler).
    !tag,
  ).finally(stopWatching);
  if (sync && !detached) await sync(req.sandbox, 'pull', undefined, report);
  return code;
}

/** The agent a sandbox was made for; one this sbx does not know (a newer version's) counts as the shell. */
export const agentOf = (sandbox: { agent: string }): AgentSpec =>
  AGENTS.find((a) => a.name === sandbox.agent) ?? getAgent('shell');

/** Seconds a command in the sandbox has after sbx passed it the signal, before it is killed. */
export const GRACE_SECONDS = 3;

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Run as root in the sandbox: every process whose environment holds SBX_EXEC_TAG=$1 (the command
 * sbx started and what it started, whatever process group or session they moved to) gets signal
 * $2; those still there after $3 seconds are killed.
 */
const STOP_SCRIPT = `tag="SBX_EXEC_TAG=$1"; sig=$2; grace=$3
found() {
  # One grep over all environments (GNU grep -z); one per process where grep has no -z (busybox).
  grep -lzxF "$tag" /proc/[0-9]*/environ 2>/dev/null | sed 's|^/proc/||; s|/environ$||'
}
grep -qz . /dev/null 2>/dev/null
if [ $? -eq 2 ]; then
  found() {
    for e in /proc/[0-9]*/environ; do
      if tr '\\0' '\\n' < "$e" 2>/dev/null | grep -qxF "$tag"; then p=\${e#/proc/}; echo "\${p%/environ}"; fi
    done
  }
fi
pids=$(found); [ -n "$pids" ] || exit 0
kill -s "$sig" $pids 2>/dev/null
deadline=$(($(date +%s) + grace))
while [ "$(date +%s)" -lt "$deadline" ]; do
  sleep 0.1
  pids=$(found); [ -n "$pids" ] || exit 0
done
kill -s KILL $pids 2>/dev/null
exit 0`;

/**
 * While a command runs in the sandbox, sbx ending ends it: SIGINT, SIGTERM or SIGHUP to sbx (a
 * closed terminal, \`timeout\`, Ctrl-C without a terminal), or sbx's parent dying (sbx is adopted: its
 * parent pid changes; polled twice a second) passes that signal (SIGTERM for a dead parent) to every
 * process of the command in the sandbox (the engine's exec API has none, so through a second exec),
 * kills what is left after GRACE_SECONDS, and exits 128 + the signal's number. Returns the stop.
 */
function endWithSbx(containerId: string, tag: string): () => void {
  const parent = process.ppid;
  let ending = false;
  const end = (signal: NodeJS.Signals) => {
    if (ending) return;
    ending = true;
    const exitCode = 128 + (constants.signals[signal] ?? 15);
    // Should the engine not answer, sbx still ends.
    setTimeout(() => process.exit(exitCode), (GRACE_SECONDS + 10) * 1000);
    execCapture(containerId, [
      'sh',
      '-c',
      STOP_SCRIPT,
      'sbx-stop',
      tag,
      signal.slice(3),
      String(GRACE_SECONDS),
    ])
      .catch(() => undefined)
      .finally(() => process.exit(exitCode));
  };
  for (const s of SIGNALS) process.on(s, end);
  // A terminal that closed fails reads and writes (EIO) before or instead of the SIGHUP: the same hangup.
  const hangup = () => end('SIGHUP');
  const streams = [process.stdin, process.stdout, process.stderr];
  for (const stream of streams) stream.on('error', hangup);
  const watch = setInterval(() => {
    if (process.ppid !== parent) end('SIGTERM');
  }, 500);
  watch.unref();
  return () => {
    clearInterval(watch);
    if (ending) return;
    for (const s of SIGNALS) process.off(s, end);
    for (const stream of streams) stream.off('error', hangup);
  };
}
