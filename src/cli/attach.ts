import { AGENTS, type AgentSpec, getAgent } from '../agents/registry.js';
import { execAttached } from '../engine/exec.js';
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
        }),
        workdir: req.workdir,
        tty: terminal !== undefined,
        ...(req.stdin && !detached ? { stdin: process.stdin } : {}),
        stdout: detached ? process.stderr : process.stdout,
        stderr: process.stderr,
        ...(terminal ? { size: terminal.size, onResize: terminal.onResize } : {}),
      }),
    wantTty,
  );
  if (sync && !detached) await sync(req.sandbox, 'pull', undefined, report);
  return code;
}

/** The agent a sandbox was made for; one this sbx does not know (a newer version's) counts as the shell. */
export const agentOf = (sandbox: { agent: string }): AgentSpec =>
  AGENTS.find((a) => a.name === sandbox.agent) ?? getAgent('shell');
