import { Args, Flags } from '@oclif/core';
import { agentNames } from '../agents/registry.js';

const WHICH = 'name, id prefix, or workspace path';

/** The sandbox argument, defined once for every command that takes one. */
export const sandboxArg = {
  /** One sandbox, by default this folder's. */
  optional: Args.string({
    description: `The sandbox: ${WHICH} (default: this folder's).`,
    ignoreStdin: true,
  }),
  /** One sandbox, to be named. */
  required: Args.string({
    description: `The sandbox: ${WHICH} (. for here).`,
    required: true,
    ignoreStdin: true,
  }),
  /** The first of several (the command is not strict and reads the rest from argv). */
  several: (verb: string) =>
    Args.string({ description: `Sandboxes to ${verb}: ${WHICH} (. for here).`, ignoreStdin: true }),
};

/** The agent and workspace of `run` and `create`. */
export const agentArgs = (verb: string) => ({
  agent: Args.string({
    description: `Agent ${verb}: ${agentNames().join(', ')}.`,
    required: true,
    ignoreStdin: true,
  }),
  workspace: Args.string({
    description: 'Project folder to mount (default: the current folder).',
    ignoreStdin: true,
  }),
});

/** The arguments of `network allow` and `network block`. */
export const hostArgs = {
  sandbox: sandboxArg.required,
  pattern: Args.string({
    description: 'A host (api.example.com), *.example.com (its subdomains), either with :PORT.',
    required: true,
    ignoreStdin: true,
  }),
};

export { splitAtDashes } from './dashes.js';

/**
 * `--all-users`: every host user's sandboxes, as far as the engine shows them (a rootful engine shows
 * them to root and to its group's members; a rootless one has only its user's). Without it, a
 * user's commands see and touch only the sandboxes they made.
 */
export const allUsersFlag = {
  'all-users': Flags.boolean({
    description: "Every host user's sandboxes, not only yours (where the engine shows them, e.g. to root).",
  }),
};
