import { createInterface } from 'node:readline/promises';

/** Asks a yes/no question on the terminal; anything but y/yes is no. Only call with a TTY. */
export async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    const answer = await rl.question(`${question} [y/N] `);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export const interactive = () => Boolean(process.stdin.isTTY && process.stderr.isTTY);

/** Shows workspace configuration files that are new or changed and asks to approve them (see sbx trust). */
export async function askApproval(shown: string): Promise<boolean> {
  process.stderr.write(
    `sbx: these files of the workspace configure the sandbox and are new or changed since you approved them (an agent in a sandbox could have written them):\n${shown}\n`,
  );
  return confirm('Approve these versions and use them?');
}

/** The request's approver: asks on a terminal; none (refused, with the command to run) without one. */
export const approver = () => (interactive() ? { approve: askApproval } : {});
