import { findSandbox, nameableSandboxes, type SandboxRef } from '../sandbox/discovery.js';
import { SbxError } from '../shared/errors.js';
import { errorText } from './render.js';

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
  const all = targets.some((t) => typeof t === 'string') ? await nameableSandboxes() : [];
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
      process.stderr.write(`${errorText(err, `${label}: `)}\n`);
    }
  }
  if (result.failed[0]) process.exitCode = result.failed[0].exitCode;
  return result;
}
