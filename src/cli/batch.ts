import { startSandbox } from '../network/proxy.js';
import { findSandbox, listSandboxes, type SandboxRef } from '../sandbox/discovery.js';
import { SbxError } from '../shared/errors.js';

export interface BatchResult {
  /** Names of the sandboxes the operation succeeded on. */
  done: string[];
  failed: Array<{ sandbox: string; error: string; exitCode: number }>;
}

/**
 * Runs an operation on each named sandbox (or on each given one), reporting every sandbox's outcome:
 * its name on stdout when done, an error line on stderr when not. The exit code is the first
 * failure's, so scripts see that something failed while every other sandbox was still handled.
 */
export async function forEachSandbox(
  targets: string[] | SandboxRef[],
  op: (sandbox: SandboxRef) => Promise<void>,
  options: { json: boolean },
): Promise<BatchResult> {
  const all = targets.some((t) => typeof t === 'string') ? await listSandboxes() : [];
  const result: BatchResult = { done: [], failed: [] };
  for (const target of targets) {
    const label = typeof target === 'string' ? target : target.name;
    try {
      const sandbox = typeof target === 'string' ? findSandbox(all, target) : target;
      await op(sandbox);
      result.done.push(sandbox.name);
      if (!options.json) process.stdout.write(`${sandbox.name}\n`);
    } catch (err) {
      if (!(err instanceof SbxError)) throw err;
      result.failed.push({ sandbox: label, error: err.message, exitCode: err.exitCode });
      process.stderr.write(`Error: ${label}: ${err.message}${err.hint ? `\nHint: ${err.hint}` : ''}\n`);
    }
  }
  if (result.failed[0]) process.exitCode = result.failed[0].exitCode;
  return result;
}

/** The one sandbox a command acts on: named, or the current folder's. */
export async function resolveSandbox(ref: string | undefined): Promise<SandboxRef> {
  return findSandbox(await listSandboxes(), ref ?? '.');
}

/** The sandbox a process is to run in (exec, shell): resolved, and started when it is stopped. */
export async function runningSandbox(ref: string | undefined): Promise<SandboxRef> {
  const sandbox = await resolveSandbox(ref);
  if (sandbox.state !== 'running') await startSandbox(sandbox.id, sandbox.network, sandbox.secrets);
  return sandbox;
}
